#!/usr/bin/env python3
"""A stand-in for container-kit-mcp, for the tests of `containerkit-exporter run`.

It speaks newline-delimited JSON-RPC on stdin and stdout like an MCP server over stdio,
writes Container Kit's PROGRESS log lines to stderr, and can be told to write what a
wrapper must pass through untouched: a 10 MB message, raw binary bytes, a message without
a trailing newline. It can record every byte it read and wrote, so that a test compares
them with what the client got.

Tools (method "tools/call", params.name):
  echo      answers with params.arguments.text
  workflow  runs a three-step workflow: PROGRESS lines on stderr and, when the request has
            params._meta.progressToken, notifications/progress with Container Kit's step
            fields in params.metadata; the final line on stderr has no newline.
            params.arguments.channels is "both" (the default), "log" or "mcp": with
            "mcp" the PROGRESS lines are left out and the 🎉 goes out as a notification
  big       answers with one message of params.arguments.bytes bytes of text
  binary    writes the 256 byte values (twice, without any framing), then answers
  partial   answers without a trailing newline
  deaf      answers, closes its stdin and waits (at most a minute) for a signal

Options:
  --exit-code N         exit with N when stdin closes (default 0)
  --final TEXT          write TEXT to stdout without a newline when stdin closes
  --on-signal NAME=N    on SIGNAME write a line to stderr and exit with N (repeatable)
  --record-stdin PATH   write a copy of every byte read from stdin to PATH
  --record-stdout PATH  write a copy of every byte written to stdout to PATH
  --record-stderr PATH  write a copy of every byte written to stderr to PATH
"""

import argparse
import json
import os
import signal
import sys
import time


class Stream:
    """An unbuffered binary stream that can keep a copy of what passes."""

    def __init__(self, raw, record):
        self.raw = raw
        self.copy = open(record, "wb") if record else None

    def write(self, data):
        self.raw.write(data)
        self.raw.flush()
        if self.copy:
            self.copy.write(data)
            self.copy.flush()

    def readline(self):
        line = self.raw.readline()
        if self.copy and line:
            self.copy.write(line)
            self.copy.flush()
        return line


def message(payload):
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def answer(request_id, result):
    return message({"jsonrpc": "2.0", "id": request_id, "result": result})


def text_result(text):
    return {"content": [{"type": "text", "text": text}]}


STEPS = [
    # (step, step_name, text, duration of the completed step)
    (1, "analyze_repository", "Analyzing repository", "1.5s"),
    (2, "build_image", "Building Docker image", "2m3s"),
    (3, "deploy_to_k8s", "Deploying to Kubernetes", "850ms"),
]
TOTAL = 3


def progress_line(emoji, level, fields, time="2025-07-11T20:14:10.357-04:00"):
    pairs = " ".join(f"{key}={value}" for key, value in fields)
    return (
        f'time={time} level={level} msg="{emoji} PROGRESS" component=mcp-server {pairs}'
    ).encode()


def notify(out, token, step, step_name, status, text, **extra):
    percentage = step * 100 // TOTAL
    params = {
        "progressToken": token,
        "progress": step,
        "total": TOTAL,
        "message": f"[{percentage}%] {text}",
        "metadata": {
            "step": step,
            "total": TOTAL,
            "percentage": percentage,
            "message": text,
            "status": status,
            "step_name": step_name,
            "trace_id": "trace-1",
            **extra,
        },
    }
    out.write(message({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}))


def workflow(out, err, token, channels):
    """Reports each event on the chosen channels, in changing order, as Container Kit may."""
    if channels == "mcp":
        err = Stream(open(os.devnull, "wb"), None)
    if channels == "log":
        token = None
    err.write(progress_line("🚀", "INFO", [
        ("step", 0), ("total", TOTAL), ("percentage", 0), ("step_name", "workflow_start"),
        ("status", "started"), ("message", '"[0%] Starting containerization workflow"'),
    ]) + b"\n")
    if token is not None:
        notify(out, token, 0, "workflow_start", "started", "Starting containerization workflow")
    err.write(b"an ordinary log line, not a PROGRESS one\n")
    for step, name, text, duration in STEPS:
        percentage = step * 100 // TOTAL
        common = [("step", step), ("total", TOTAL), ("percentage", percentage), ("step_name", name)]
        if token is not None:
            notify(out, token, step, name, "running", text)
            # Container Kit repeats its state as a heartbeat.
            notify(out, token, step, name, "running", text)
        err.write(progress_line("🔄", "INFO", common + [
            ("status", "running"), ("message", f'"[{percentage}%] {text}"'),
        ]) + b"\n")
        err.write(progress_line("✅", "INFO", common + [
            ("status", "completed"), ("message", f'"[{percentage}%] {text}"'),
            ("duration", duration),
        ]) + b"\n")
        if token is not None:
            notify(out, token, step, name, "completed", text)
    if token is not None:
        # A second token without step fields and without a total.
        out.write(message({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "tok-2", "progress": 0.5},
        }))
    if channels == "mcp":
        notify(out, token, TOTAL, "workflow_complete", "completed", "Containerization complete",
               duration="3m4.5s")
        return
    # The last stderr line has no newline: it counts only if the wrapper flushes it.
    err.write(progress_line("🎉", "INFO", [
        ("step", TOTAL), ("total", TOTAL), ("percentage", 100),
        ("step_name", "workflow_complete"), ("status", "completed"),
        ("message", '"[100%] Containerization complete"'), ("duration", "3m4.5s"),
        ("image_ref", "localhost/app:latest"), ("namespace", "default"),
    ], time="2025-07-11T20:17:14.857-04:00"))


def serve(args, out, err):
    source = Stream(sys.stdin.buffer, args.record_stdin)
    while True:
        line = source.readline()
        if not line:
            break
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if not isinstance(request, dict) or "id" not in request:
            continue
        request_id = request["id"]
        method = request.get("method")
        params = request.get("params") or {}
        if method == "initialize":
            out.write(answer(request_id, {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stand-in", "version": "0"},
            }))
            continue
        if method != "tools/call":
            out.write(answer(request_id, {}))
            continue
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "echo":
            out.write(answer(request_id, text_result(arguments.get("text", ""))))
        elif name == "workflow":
            token = (params.get("_meta") or {}).get("progressToken")
            workflow(out, err, token, arguments.get("channels", "both"))
            out.write(answer(request_id, text_result("workflow complete")))
        elif name == "big":
            size = int(arguments.get("bytes", 10 * 1024 * 1024))
            pattern = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
            text = (pattern * (size // len(pattern) + 1))[:size].decode()
            out.write(answer(request_id, text_result(text)))
        elif name == "binary":
            out.write(bytes(range(256)) * 2)
            out.write(answer(request_id, text_result("binary sent")))
        elif name == "partial":
            out.write(answer(request_id, text_result("no newline after me")).rstrip(b"\n"))
        elif name == "deaf":
            out.write(answer(request_id, text_result("not reading any more")))
            os.close(0)
            time.sleep(60)
            return
        else:
            out.write(message({
                "jsonrpc": "2.0", "id": request_id,
                "error": {"code": -32601, "message": f"unknown tool {name}"},
            }))


def on_signals(specs, err):
    for spec in specs:
        name, _, code = spec.partition("=")
        number = getattr(signal, "SIG" + name)

        def handler(received, _frame, code=int(code), name=name):
            err.write(f"stand-in: SIG{name} received\n".encode())
            os._exit(code)

        signal.signal(number, handler)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--final")
    parser.add_argument("--on-signal", action="append", default=[])
    parser.add_argument("--record-stdin")
    parser.add_argument("--record-stdout")
    parser.add_argument("--record-stderr")
    args = parser.parse_args()

    out = Stream(sys.stdout.buffer, args.record_stdout)
    err = Stream(sys.stderr.buffer, args.record_stderr)
    on_signals(args.on_signal, err)
    err.write(b"stand-in: ready\n")
    serve(args, out, err)
    if args.final is not None:
        out.write(args.final.encode())
    sys.exit(args.exit_code)


if __name__ == "__main__":
    main()
