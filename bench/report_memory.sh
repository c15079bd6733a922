#!/usr/bin/env bash
# Peak memory of `bagnet report` against dataset size, measured in one run (GNU time's maximum
# resident set size): the first 2,000 and all 10,000 Fashion-MNIST test images with the bundled
# model, then a resume of the finished 10,000 run (reads its reports.jsonl) and a merge of it split
# in two shards. Prints the peaks and the ratio 10,000 / 2,000 (goal: at most 1.2). Never fails on
# the numbers. Usage: bash bench/report_memory.sh [BAGNET] [WORK]
set -euo pipefail
cd "$(dirname "$0")/.."
bagnet=$(realpath "${1:-build/apps/bagnet/bagnet}")
work=${2:-/tmp/bagnet-report-memory}
fashion=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
threads=${THREADS:-2}
rm -rf "$work" && mkdir -p "$work"
/usr/bin/env python3 - "$fashion" "$work" <<'PY'
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
n = 2000
images = gzip.open(f"{src}/t10k-images-idx3-ubyte.gz").read(16 + n * 784)
labels = gzip.open(f"{src}/t10k-labels-idx1-ubyte.gz").read(8 + n)
open(f"{out}/first2000-images-idx3-ubyte", "wb").write(images[:4] + struct.pack(">I", n) + images[8:])
open(f"{out}/first2000-labels-idx1-ubyte", "wb").write(labels[:4] + struct.pack(">I", n) + labels[8:])
PY
peak() {  # peak resident MB of a command
  local log="$work/time.log"
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { tail -3 "$log" >&2; return 1; }
  awk '/Maximum resident set size/ {printf "%.0f", $6 / 1024}' "$log"
}
m2k=$(peak "$bagnet" report "$work/first2000-images-idx3-ubyte" --threads "$threads" -o "$work/r2000")
m10k=$(peak "$bagnet" report "$fashion/t10k-images-idx3-ubyte.gz" --threads "$threads" -o "$work/r10000")
resume=$(peak "$bagnet" report "$fashion/t10k-images-idx3-ubyte.gz" --threads "$threads" -o "$work/r10000")
for s in 0 1; do
  "$bagnet" report "$fashion/t10k-images-idx3-ubyte.gz" --threads "$threads" --shard "$s/2" -o "$work/s$s" 2>/dev/null
done
merge=$(peak "$bagnet" merge "$work/s0" "$work/s1" -o "$work/merged")
cmp -s "$work/merged/reports.jsonl" "$work/r10000/reports.jsonl" && same=yes || same=NO
printf 'report 2,000 images       %6d MB\n' "$m2k"
printf 'report 10,000 images      %6d MB   ratio %.2f (goal <= 1.2)\n' "$m10k" "$(awk "BEGIN {print $m10k / $m2k}")"
printf 'resume of the 10,000 run  %6d MB   (reads %d MB of reports.jsonl)\n' "$resume" "$(($(stat -c %s "$work/r10000/reports.jsonl") >> 20))"
printf 'merge of 2 x 5,000        %6d MB   (output identical to the unsharded run: %s)\n' "$merge" "$same"
