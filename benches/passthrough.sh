#!/usr/bin/env bash
# Passthrough throughput of `containerkit-exporter run -- CHILD`, side by side with the
# same child writing straight to a pipe, in the same run. Three cases:
#   stdout  the child writes an MCP session (JSON-RPC lines, progress notifications,
#           tool results up to 2 MiB) to stdout; the wrapper forwards and observes it;
#   stdin   the same bytes go in through the wrapper's stdin to `cat` and back out
#           (direct: through a plain `cat` in the same place);
#   stderr  the child writes a Container Kit log to stderr; the wrapper forwards it and
#           parses its PROGRESS lines.
# The reader is `cat >/dev/null` on a pipe in every case. Direct and wrapped runs
# alternate; the best and the median of the rounds are reported (on a shared machine the
# best is the steadier figure).
#
# Usage: benches/passthrough.sh [MEGABYTES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-512}
rounds=${2:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/containerkit-exporter")
stream="$work/session.jsonl"
log="$work/stderr.log"
python3 benches/gen_mcp_stream.py "$stream" "$megabytes"
python3 benches/gen_log.py "$log" "$megabytes" text >/dev/null 2>&1
cat "$stream" "$log" >/dev/null # warm the page cache
wrap="$bin --web.listen-address=127.0.0.1:0 --run.linger=0s --log.level=warn run --"
export stream log

time_into() { # file, shell command: appends the command's wall time in seconds
  /usr/bin/time -f %e -a -o "$1" sh -c "$2"
}

for round in $(seq 1 "$rounds"); do
  time_into "$work/stdout.direct" 'cat "$stream" | cat >/dev/null'
  time_into "$work/stdout.wrapped" "$wrap"' cat "$stream" | cat >/dev/null'
  time_into "$work/stdin.direct" 'cat "$stream" | cat | cat >/dev/null'
  time_into "$work/stdin.wrapped" 'cat "$stream" | '"$wrap"' cat | cat >/dev/null'
  time_into "$work/stderr.direct" 'cat "$log" | cat >/dev/null'
  time_into "$work/stderr.wrapped" "$wrap"' sh -c '\''cat "$log" >&2'\'' 2>&1 >/dev/null | cat >/dev/null'
done

summary() { # file, bytes: prints "best_MBps median_MBps best_seconds"
  sort -n "$1" | awk -v b="$2" '{ t[NR] = ($1 > 0 ? $1 : 0.01) } END {
    m = t[int((NR + 1) / 2)]
    printf "%.0f %.0f %.3f\n", b / t[1] / 1048576, b / m / 1048576, t[1]
  }'
}

echo "session: $(stat -c %s "$stream") bytes, $(grep -c progressToken "$stream") progress" \
  "notifications; log: $(stat -c %s "$log") bytes; $(nproc) cores; $rounds rounds"
printf "%-7s %24s %24s %16s\n" case "direct MB/s best/median" "wrapped MB/s best/median" \
  "wrapped/direct"
for case in stdout stdin stderr; do
  bytes=$(stat -c %s "$([ "$case" = stderr ] && echo "$log" || echo "$stream")")
  read -r d_best d_median d_time < <(summary "$work/$case.direct" "$bytes")
  read -r w_best w_median w_time < <(summary "$work/$case.wrapped" "$bytes")
  ratio=$(awk -v d="$d_time" -v w="$w_time" 'BEGIN { printf "%.0f%%", 100 * d / w }')
  printf "%-7s %11s / %-11s %11s / %-11s %16s\n" "$case" "$d_best" "$d_median" "$w_best" \
    "$w_median" "$ratio"
done
# The wrapper puts one more process and pipe between the child and the reader; a plain
# `cat` in the same place (the stdin case's direct run) is what that costs at the least.
read -r _ _ hop_time < <(summary "$work/stdin.direct" "$(stat -c %s "$stream")")
read -r _ _ wrapped_time < <(summary "$work/stdout.wrapped" "$(stat -c %s "$stream")")
awk -v h="$hop_time" -v w="$wrapped_time" \
  'BEGIN { printf "stdout wrapped / a plain cat in its place (best): %.0f%%\n", 100 * h / w }'
