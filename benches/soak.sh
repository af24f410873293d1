#!/usr/bin/env bash
# Soak test of `tail`: a writer appends real PROGRESS lines (slog text form) at a fixed rate
# and rotates the file by rename every few MB, while the release binary follows it. At the
# end the exporter's counters are compared with what was written (loss, duplicates), and
# the exporter's CPU time and memory are reported.
#
# Usage: benches/soak.sh [SECONDS] [LINES_PER_SECOND] [ROTATE_MB]
# Defaults: 60 s, 25000 lines/s, a rotation every 4 MB. Needs python3 and curl.
# Builds the release binary unless CONTAINERKIT_EXPORTER_BIN names one.
set -euo pipefail

seconds=${1:-60}
rate=${2:-25000}
rotate_mb=${3:-4}

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${CONTAINERKIT_EXPORTER_BIN:-}" ]]; then
    cargo build --release --manifest-path "$root/Cargo.toml" >&2
    target=${CARGO_TARGET_DIR:-$root/target}
    CONTAINERKIT_EXPORTER_BIN=$target/release/containerkit-exporter
fi

work=$(mktemp -d)
log=$work/app.log
exporter_pid=
cleanup() {
    if [[ -n "$exporter_pid" ]] && kill -0 "$exporter_pid" 2>/dev/null; then
        kill -TERM "$exporter_pid" 2>/dev/null || true
        wait "$exporter_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free port on the loopback interface.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port/metrics

/usr/bin/time -v -o "$work/time.txt" "$CONTAINERKIT_EXPORTER_BIN" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn \
    tail "$log" 2>"$work/exporter.log" &
exporter_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
done

# The writer: workflows of 🚀, then 🔄 and ✅ for each of 5 steps, then 🎉, with a noise
# line after every PROGRESS line. It rotates like logrotate's `create` followed by a signal
# the program handles a little later: rename, a few more lines to the old file, reopen.
python3 - "$log" "$seconds" "$rate" "$rotate_mb" >"$work/written.txt" <<'PY'
import os, sys, time
path, seconds, rate, rotate_mb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
steps = ["analyze_repository", "generate_dockerfile", "build_image", "deploy_to_k8s", "vulnerability_scan"]
total = len(steps) * 2

def line(emoji, level, step, name, status, extra=""):
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)
    return (f'time={stamp} level={level} msg="{emoji} PROGRESS" component=mcp-server step={step} '
            f'total={total} percentage={step * 100 // total} step_name={name} status={status} '
            f'message="[{step * 100 // total}%] {name}"{extra}\n')

def workflow():
    out = [line("🚀", "INFO", 0, "workflow_start", "started")]
    for i, name in enumerate(steps):
        out.append(line("🔄", "INFO", 2 * i + 1, name, "running"))
        out.append(line("✅", "INFO", 2 * i + 2, name, "completed", " duration=1.5s"))
    out.append(line("🎉", "INFO", total, "workflow_complete", "completed",
                    " duration=1m2.5s image_ref=app:1 namespace=default"))
    return out

noise = 'time=2025-07-11T20:14:10.357-04:00 level=WARN msg="Operation failed, retrying" attempt=1\n'
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
written_bytes = events = workflows = lines = rotations = 0
start = time.monotonic()
batch_period = 0.01
per_batch = max(1, int(rate * batch_period))
pending = []
next_batch = start
while time.monotonic() - start < seconds:
    chunk = []
    while len(chunk) < per_batch:
        if not pending:
            pending = workflow()
            workflows += 1
        chunk.append(pending.pop(0))
        chunk.append(noise)
        events += 1
    lines += len(chunk)
    # One write per line, as slog does: each is a file event for the exporter.
    for text in chunk:
        data = text.encode()
        os.write(fd, data)
        written_bytes += len(data)
    if written_bytes >= rotate_mb * 1024 * 1024:
        os.rename(path, path + ".1")
        # The program has not reopened yet: these lines still go to the rotated file.
        tail = ("".join(pending[:1]) + noise).encode() if pending else noise.encode()
        if pending:
            pending.pop(0)
            events += 1
            lines += 2
        else:
            lines += 1
        os.write(fd, tail)
        os.close(fd)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        written_bytes = 0
        rotations += 1
    next_batch += batch_period
    delay = next_batch - time.monotonic()
    if delay > 0:
        time.sleep(delay)
# Finish the open workflow so that every count is whole.
rest = "".join(pending).encode()
events += len(pending)
lines += len(pending)
os.write(fd, rest)
os.close(fd)
elapsed = time.monotonic() - start
print(f"events={events} lines={lines} workflows={workflows} rotations={rotations} "
      f"seconds={elapsed:.1f} rate={lines / elapsed:.0f}")
PY

read -r written < "$work/written.txt"
echo "written: $written"
field() { sed -E "s/.*\b$1=([0-9.]+).*/\1/" <<<"$written"; }
want_events=$(field events)
want_lines=$(field lines)
want_workflows=$(field workflows)

metric() {
    curl -sf "$url" | awk -v name="$1" '$1 ~ "^"name"[{]" && $1 ~ /app.log"/ {sum += $2} END {printf "%d", sum}'
}
# Wait for the exporter to catch up (at most 30 s after the writer stopped).
for _ in $(seq 300); do
    [[ $(metric containerkit_exporter_lines_read_total) -ge $want_lines ]] && break
    sleep 0.1
done
sleep 1
got_events=$(metric containerkit_exporter_progress_events_total)
got_lines=$(metric containerkit_exporter_lines_read_total)
got_started=$(curl -sf "$url" | awk '/^containerkit_workflows_total[{].*status="started"/ {print $2}')
got_completed=$(curl -sf "$url" | awk '/^containerkit_workflows_total[{].*status="completed"/ {print $2}')
rotations=$(curl -sf "$url" | awk '/^containerkit_exporter_rotations_total[{].*kind="rename"/ {print $2}')
errors=$(metric containerkit_exporter_parse_errors_total)

# Idle cost: CPU ticks used over 10 s with nothing written.
# /usr/bin/time runs the exporter as its child.
pid=$(pgrep -P "$exporter_pid" | head -1)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
idle_before=$(ticks); sleep 10; idle_after=$(ticks)
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")

kill -TERM "$pid"
wait "$exporter_pid" || true
exporter_pid=

echo "counted: events=$got_events lines=$got_lines workflows_started=$got_started" \
     "workflows_completed=$got_completed rotations=$rotations parse_errors=$errors"
echo "loss/duplicates: events $((got_events - want_events)), lines $((got_lines - want_lines))," \
     "workflows $((got_started - want_workflows)) (0 means none)"
echo "idle CPU over 10 s: $((idle_after - idle_before)) ticks of $(getconf CLK_TCK)/s; RSS at the end: ${rss_kb} kB"
grep -E "User time|System time|Percent of CPU|Maximum resident|Elapsed" "$work/time.txt"
if grep -q . "$work/exporter.log"; then
    echo "exporter warnings:"; sort "$work/exporter.log" | uniq -c | sort -rn | head -5
fi
[[ $got_events -eq $want_events && $got_lines -eq $want_lines && $got_started -eq $want_workflows ]]
