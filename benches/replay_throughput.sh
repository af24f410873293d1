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

measure() { # name, command...: prints wall seconds and peak RSS from /usr/bin/time
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
  read -r wall rss <"$work/time"
  awk -v n="$name" -v w="$wall" -v r="$rss" -v b="$bytes" -v l="$lines" 'BEGIN {
    if (w <= 0) w = 0.01
    printf "%-10s %7.2f s  %8.1f MB/s  %10.0f lines/s  peak RSS %7.1f MiB\n", n, w, b / w / 1048576, l / w, r / 1024
  }'
}

echo "log: $form form, $bytes bytes, $lines lines"
for round in 1 2 3; do
  echo "round $round"
  measure replay target/release/containerkit-exporter replay "$log"
  measure grep grep -c PROGRESS "$log"
done
