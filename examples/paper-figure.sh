#!/usr/bin/env bash
# A figure like the BagNet paper's: each image beside the heatmap of its top class (RdBu_r, red =
# evidence for the class, blue = against, limits +-99th percentile of |map|, Canny edges in grey),
# plus the same maps on one shared colour scale so the images can be compared.
#   bash examples/paper-figure.sh [WEIGHTS IMAGE|DIR...]      (outputs in ${OUT_DIR:-out/paper-figure})
# With no arguments it uses the BagNet-33 test checkpoint and images of ../shared/fixtures/official
# (deterministic test weights: the pictures show the rendering, not real evidence).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
bagnet="$build_dir/apps/bagnet/bagnet"
[ -x "$bagnet" ] || bash scripts/build.sh >/dev/null

shared=../shared/fixtures/official
out=${OUT_DIR:-out/paper-figure}
if [ $# -ge 2 ]; then
  weights=$1
  shift
  inputs=("$@")
else
  weights="$build_dir/demo-bagnet33.pth.tar"
  [ -f "$weights" ] || xz -dc "$shared/bagnet33-s33.pth.tar.xz" > "$weights"
  inputs=("$shared/images")
fi
mkdir -p "$out"

# Image | heatmap of the top class, one colour scale per picture (the paper's default).
"$bagnet" heatmap "${inputs[@]}" --weights "$weights" --class top --style panel --overwrite -o "$out/per-image"
# The same, on one colour scale for all images: equal colours mean equal logits.
"$bagnet" heatmap "${inputs[@]}" --weights "$weights" --class top --style panel --scale global --overwrite \
  -o "$out/global"
echo "figures in $out/per-image and $out/global"
