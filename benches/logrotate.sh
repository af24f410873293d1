#!/usr/bin/env bash
# Runs the exporter as a user would, tailing a directory that logrotate rotates, and checks
# that every PROGRESS line written was counted once.
#
# Usage: benches/logrotate.sh create|copytruncate [SECONDS] [LINES_PER_SECOND]
# In `create` mode the writer reopens its log when logrotate's postrotate sends it SIGHUP;
# in `copytruncate` mode it keeps writing to the same file. logrotate is forced every two
# seconds. PATTERN (default `*.log`) is the glob followed in the log directory. Needs logrotate, python3 and curl; builds the release binary unless
# CONTAINERKIT_EXPORTER_BIN names one.
set -euo pipefail

mode=${1:?usage: $0 create|copytruncate [SECONDS] [LINES_PER_SECOND]}
seconds=${2:-30}
rate=${3:-2000}

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${CONTAINERKIT_EXPORTER_BIN:-}" ]]; then
    cargo build --release --manifest-path "$root/Cargo.toml" >&2
    CONTAINERKIT_EXPORTER_BIN=${CARGO_TARGET_DIR:-$root/target}/release/containerkit-exporter
fi

work=$(mktemp -d)
logs=$work/logs
mkdir "$logs"
exporter_pid=
writer_pid=
cleanup() {
    for pid in $writer_pid $exporter_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

case $mode in
    create) rotate_how="create 0644 root root
    postrotate
        kill -HUP \$(cat $work/writer.pid)
    endscript" ;;
    copytruncate) rotate_how="copytruncate" ;;
    *) echo "mode must be create or copytruncate" >&2; exit 2 ;;
esac
cat >"$work/logrotate.conf" <<EOF
$logs/app.log {
    rotate 1000
    missingok
    notifempty
    $rotate_how
}
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port/metrics
"$CONTAINERKIT_EXPORTER_BIN" --web.listen-address="127.0.0.1:$port" --log.level=info \
    tail "$logs/${PATTERN:-*.log}" 2>"$work/exporter.log" &
exporter_pid=$!

python3 - "$logs/app.log" "$work/writer.pid" "$seconds" "$rate" >"$work/written.txt" <<'PY' &
import os, signal, sys, time
path, pidfile, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
reopen = False
def on_hup(*_):
    global reopen
    reopen = True
signal.signal(signal.SIGHUP, on_hup)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
written = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    if reopen:
        reopen = False
        os.close(fd)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for _ in range(rate // 100):
        t = time.time()
        os.write(fd, (f'time={time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))}.{int(t % 1 * 1000):03d}Z '
                      f'level=INFO msg="🔄 PROGRESS" component=mcp-server step=3 total=10 '
                      f'step_name=build_image status=running message="line {written}"\n').encode())
        written += 1
    time.sleep(0.01)
print(written)
PY
writer_pid=$!

rotations=0
sleep 2
while kill -0 "$writer_pid" 2>/dev/null; do
    logrotate -f -s "$work/logrotate.state" "$work/logrotate.conf" && rotations=$((rotations + 1))
    sleep 2
done
wait "$writer_pid"
writer_pid=
written=$(cat "$work/written.txt")

counted() {
    curl -sf "$url" | awk '/^containerkit_exporter_progress_events_total[{]/ {sum += $2} END {printf "%d", sum}'
}
for _ in $(seq 100); do
    [[ $(counted) -ge $written ]] && break
    sleep 0.1
done
sleep 2
got=$(counted)
# Every rotated file is kept: what they hold together is what a reader could still find.
in_files=$(cat "$logs"/app.log* | grep -c PROGRESS || true)
echo "mode=$mode logrotate runs=$rotations written=$written in_files=$in_files counted=$got" \
     "difference=$((got - written))"
curl -sf "$url" | grep -E '^containerkit_exporter_(rotations|truncations|progress_events|open_errors|files_open|leading_nul)' \
    | grep -v ' 0$' || true
kill -TERM "$exporter_pid"
wait "$exporter_pid" || true
exporter_pid=
grep -c "level=warn" "$work/exporter.log" | sed 's/^/exporter warnings: /'
[[ $got -eq $written ]]
