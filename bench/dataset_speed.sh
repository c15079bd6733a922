#!/usr/bin/env bash
# Dataset runs against the network alone, as ratios measured in one run (the machine is shared:
# absolute times move, ratios much less). Never fails on the numbers.
#  1. All 10,000 Fashion-MNIST test images, bundled model: `bagnet eval` (batched bare forward
#     passes) against `bagnet report` (batched, the default) and `report --batch-size 1`.
#     Goal: report within 1.3x of eval. Also checks the two reports are byte-identical.
#  2. BagNet-33 (the official-format fixture) at 224x224, stride 8, on 24 images: `eval
#     --batch-size 1` (one bare forward pass per image) against `report`. Goal: within 1.2x.
#     Also `heatmap` of the same 24 images (the top class, paper style: map, edges, PNG) against the
#     bare passes (no goal: the drawing runs beside the next pass).
# Usage: bash bench/dataset_speed.sh [BAGNET] [WORK]   (THREADS=2, FASHION_MNIST=..., BAGNET33=...)
set -euo pipefail
cd "$(dirname "$0")/.."
bagnet=$(realpath "${1:-build/apps/bagnet/bagnet}")
work=${2:-/tmp/bagnet-dataset-speed}
fashion=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
threads=${THREADS:-2}
official=${BAGNET_OFFICIAL:-../shared/fixtures/official}
rm -rf "$work" && mkdir -p "$work"

seconds() {  # wall seconds of a command, its output discarded
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { tail -3 "$work/last.err" >&2; return 1; }
  end=$(date +%s.%N)
  awk "BEGIN {printf \"%.2f\", $end - $start}"
}
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }

echo "threads $threads, $(nproc) cores, $("$bagnet" --version 2>/dev/null | head -1)"
data="$fashion/t10k-images-idx3-ubyte.gz"
eval_s=$(seconds "$bagnet" eval "$data" --threads "$threads")
report_s=$(seconds "$bagnet" report "$data" --threads "$threads" -o "$work/batched")
single_s=$(seconds "$bagnet" report "$data" --threads "$threads" --batch-size 1 -o "$work/single")
cmp -s "$work/batched/reports.jsonl" "$work/single/reports.jsonl" && same=yes || same=NO
echo "Fashion-MNIST, 10,000 test images, bundled model"
printf '  eval (batched forward passes)      %7.2f s\n' "$eval_s"
printf '  report (batched, default)          %7.2f s   ratio to eval %s (goal <= 1.3)\n' "$report_s" "$(ratio "$report_s" "$eval_s")"
printf '  report --batch-size 1              %7.2f s   ratio to eval %s; byte-identical to batched: %s\n' \
  "$single_s" "$(ratio "$single_s" "$eval_s")" "$same"

weights=${BAGNET33:-build/tests/fixtures/bagnet33-s33.pth.tar}
if [[ ! -f "$weights" ]]; then
  xz -dc "$official/bagnet33-s33.pth.tar.xz" >"$work/bagnet33.pth.tar"
  weights="$work/bagnet33.pth.tar"
fi
: >"$work/images.csv"
for repeat in 1 2 3 4 5 6 7 8; do
  for image in chelsea-224x224.png coffee-224x224.png rocket-160x208.png; do
    echo "$(realpath "$official/images/$image"),0" >>"$work/images.csv"
  done
done
model=(--weights "$weights" --threads "$threads")
forward_s=$(seconds "$bagnet" eval "$work/images.csv" "${model[@]}" --batch-size 1)
report33_s=$(seconds "$bagnet" report "$work/images.csv" "${model[@]}" -o "$work/bagnet33")
echo "BagNet-33 at 224x224 (stride 8 maps), 24 images"
printf '  eval --batch-size 1 (bare passes)  %7.2f s\n' "$forward_s"
printf '  report                             %7.2f s   ratio to the bare passes %s (goal <= 1.2)\n' \
  "$report33_s" "$(ratio "$report33_s" "$forward_s")"

mkdir -p "$work/pictures"
for repeat in 1 2 3 4 5 6 7 8; do
  for image in chelsea-224x224.png coffee-224x224.png rocket-160x208.png; do
    cp "$official/images/$image" "$work/pictures/$repeat-$image"
  done
done
heatmap_s=$(seconds "$bagnet" heatmap "$work/pictures" "${model[@]}" -o "$work/heatmap")
printf '  heatmap                            %7.2f s   ratio to the bare passes %s\n' "$heatmap_s" "$(ratio "$heatmap_s" "$forward_s")"
