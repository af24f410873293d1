#!/usr/bin/env python3
"""Writes what an MCP server sends on stdout during a busy session, for benchmarks.

Usage: gen_mcp_stream.py OUT_PATH [MEGABYTES]

Newline-delimited JSON-RPC messages: small tool results, notifications/progress with
Container Kit's step fields, and now and then a large tool result (64 KiB to 2 MiB of
base64 text), which carries most of the bytes.
"""

import base64
import json
import random
import sys

STEPS = ["analyze_repository", "generate_dockerfile", "build_image", "deploy_to_k8s"]


def line(payload):
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def progress(rng, token, step):
    name = STEPS[step % len(STEPS)]
    return line({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {
            "progressToken": token,
            "progress": step % 10,
            "total": 10,
            "message": f"[{step % 10 * 10}%] working on {name}",
            "metadata": {
                "step": step % 10, "total": 10, "percentage": step % 10 * 10,
                "step_name": name, "status": rng.choice(["running", "completed"]),
            },
        },
    })


def result(request_id, text):
    return line({
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"content": [{"type": "text", "text": text}]},
    })


def main():
    out_path = sys.argv[1]
    megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    target = megabytes * 1024 * 1024
    rng = random.Random(7)
    blob = base64.b64encode(rng.randbytes(2 * 1024 * 1024)).decode()
    written = 0
    request_id = 0
    with open(out_path, "wb") as out:
        while written < target:
            request_id += 1
            token = f"tok-{request_id % 100}"
            chunk = b"".join(progress(rng, token, step) for step in range(rng.randrange(1, 20)))
            if rng.random() < 0.2:
                size = rng.randrange(64 * 1024, len(blob))
                chunk += result(request_id, blob[:size])
            else:
                chunk += result(request_id, f"step {request_id} done")
            out.write(chunk)
            written += len(chunk)


if __name__ == "__main__":
    main()
