#!/usr/bin/env python3
"""Writes a large, realistic container-kit-mcp log for benchmarks.

Usage: gen_log.py OUT_PATH [MEGABYTES] [FORM]

FORM is text (slog text handler, the default), json (slog JSON handler) or console. About one
line in ten is a PROGRESS line; the rest is the noise a real server logs between steps.
"""

import json
import random
import sys

STEPS = [
    "analyze_repository",
    "generate_dockerfile",
    "build_image",
    "load_image",
    "generate_k8s_manifests",
    "deploy_to_k8s",
    "vulnerability_scan",
]
EMOJI = {"started": "🚀", "running": "🔄", "completed": "✅", "failed": "❌", "done": "🎉"}


def noise(rng, stamp):
    kind = rng.randrange(4)
    if kind == 0:
        return f'time={stamp} level=DEBUG msg="docker build output" component=mcp-server line="Step {rng.randrange(9)}/9 : RUN go build -o /out/server ./cmd/server"'
    if kind == 1:
        return f'time={stamp} level=WARN msg="Operation failed, retrying" component=mcp-server operation=build_image attempt={rng.randrange(1, 4)} error="exit status 1"'
    if kind == 2:
        return f'time={stamp} level=INFO msg="Tool called" component=mcp-server tool=containerize_and_deploy session={rng.randrange(10**9)}'
    return f"\x1b[36m{stamp}\x1b[0m INFO layer {rng.randrange(16**12):012x} pushed ({rng.randrange(10**6)} bytes)"


def progress(form, stamp, emoji, step, total, name, status, extra):
    fields = {"step": step, "total": total, "percentage": step * 100 // total,
              "step_name": name, "status": status, "message": f"[{step * 100 // total}%] {name}"}
    fields.update(extra)
    if form == "json":
        record = {"time": stamp, "level": "INFO", "msg": f"{emoji} PROGRESS", "component": "mcp-server"}
        record.update(fields)
        return json.dumps(record, ensure_ascii=False)
    pairs = " ".join(
        f'{k}="{v}"' if (" " in str(v) or form == "console") and not isinstance(v, int) else f"{k}={v}"
        for k, v in fields.items()
    )
    if form == "console":
        return f"2025/07/11 20:14:10 INFO {emoji} PROGRESS {pairs}"
    return f'time={stamp} level=INFO msg="{emoji} PROGRESS" component=mcp-server {pairs}'


def main():
    out = sys.argv[1]
    megabytes = float(sys.argv[2]) if len(sys.argv) > 2 else 100
    form = sys.argv[3] if len(sys.argv) > 3 else "text"
    rng = random.Random(7)
    limit = int(megabytes * 1024 * 1024)
    written = 0
    lines = 0
    progress_lines = 0
    with open(out, "w", encoding="utf-8") as f:
        while written < limit:
            total = len(STEPS) + 1
            batch = []
            stamp = "2025-07-11T20:14:10.357-04:00"
            batch.append(progress(form, stamp, EMOJI["started"], 0, total, "workflow_start", "started", {}))
            for i, name in enumerate(STEPS, start=1):
                batch.append(progress(form, stamp, EMOJI["running"], i, total, name, "running", {}))
                batch.extend(noise(rng, stamp) for _ in range(18))
                dur = {"duration": f"{rng.randrange(1, 120)}.{rng.randrange(10**9):09d}s"}
                batch.append(progress(form, stamp, EMOJI["completed"], i, total, name, "completed", dur))
            batch.append(progress(form, stamp, EMOJI["done"], total, total, "workflow_complete", "completed",
                                  {"duration": "4m12.9s", "image_ref": "localhost:5001/app:latest"}))
            text = "\n".join(batch) + "\n"
            f.write(text)
            written += len(text.encode("utf-8"))
            lines += len(batch)
            progress_lines += sum(1 for line in batch if "PROGRESS" in line)
    print(f"{out}: {written} bytes, {lines} lines, {progress_lines} PROGRESS lines", file=sys.stderr)


if __name__ == "__main__":
    main()
