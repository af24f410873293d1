#!/usr/bin/env bash
# Replay throughput and peak memory on a large generated log, side by side with
# `grep -c PROGRESS` on the same file in the same run.
#
# Usage: benches/replay_throughput.sh [MEGABYTES] [FORM]   (FORM: text, json or console)
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-200}
form=${2:-text}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
log="$work/bench.log"
python3 benches/gen_log.py "$log" "$megabytes" "$form"
bytes=$(stat -c %s "$log")
lines=$(wc -l <"$log")
cat "$log" >/dev/null # warm the page cache

measure() { # name, command...: wall seconds (bash clock), peak RSS (from /usr/bin/time)
  local name=$1 start end
  shift
  start=$EPOCHREALTIME
  # Output goes to a file: GNU grep stops at the first match when it writes to /dev/null.
  /usr/bin/time -f "%M" -o "$work/time" "$@" >"$work/out"
  end=$EPOCHREALTIME
  awk -v n="$name" -v s="$start" -v e="$end" -v r="$(cat "$work/time")" -v b="$bytes" -v l="$lines" 'BEGIN {
    w = e - s
    printf "%-8s %7.3f s  %8.1f MB/s  %10.0f lines/s  peak RSS %7.1f MiB\n", n, w, b / w / 1048576, l / w, r / 1024
  }'
}

echo "log: $form form, $bytes bytes, $lines lines"
for round in 1 2 3; do
  echo "round $round"
  measure replay target/release/containerkit-exporter replay "$log"
  measure grep grep -c PROGRESS "$log"
done
