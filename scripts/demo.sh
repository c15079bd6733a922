#!/usr/bin/env bash
# The main job: builds bagnet, then describes a BagNet checkpoint, classifies images and writes
# their evidence maps and heatmap pictures into ${OUT_DIR:-out/demo}.
#   bash scripts/demo.sh [WEIGHTS [IMAGE...]]
# Without WEIGHTS it uses the BagNet-33 test checkpoint of ../shared/fixtures/official (deterministic
# test weights, not trained) and its images. Official ImageNet weights: see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
build_dir=${BUILD_DIR:-build}
out=${OUT_DIR:-out/demo}
bagnet="$build_dir/apps/bagnet/bagnet"
mkdir -p "$out"

weights=${1:-}
shift || true
images=("$@")
shared=../shared/fixtures/official
if [ -z "$weights" ]; then
  [ -f "$shared/bagnet33-s33.pth.tar.xz" ] || { echo "error: give a checkpoint: bash scripts/demo.sh WEIGHTS [IMAGE...]" >&2; exit 2; }
  weights="$build_dir/demo-bagnet33.pth.tar"
  [ -f "$weights" ] || xz -dc "$shared/bagnet33-s33.pth.tar.xz" > "$weights"
  echo "no checkpoint given: using the BagNet-33 test checkpoint (deterministic test weights, not trained)"
fi
if [ ${#images[@]} -eq 0 ]; then
  images=("$shared"/images/*.png)
fi

echo "== bagnet info"
"$bagnet" info --weights "$weights" | tee "$out/info.txt"
echo
echo "== bagnet predict"
"$bagnet" predict "${images[@]}" --weights "$weights" --topk 5 | tee "$out/predictions.txt"
"$bagnet" predict "${images[@]}" --weights "$weights" --topk 5 --json > "$out/predictions.json"
echo
echo "== bagnet evidence (per-patch logits of all classes)"
for image in "${images[@]}"; do
  name=$(basename "${image%.*}")
  "$bagnet" evidence "$image" --weights "$weights" --class all --npy "$out/$name-evidence.npy" > "$out/$name-evidence.txt"
  head -n 1 "$out/$name-evidence.txt"
done
echo
echo "== bagnet heatmap (the paper's style: image | heatmap of the top class)"
"$bagnet" heatmap "${images[@]}" --weights "$weights" --class top --style panel --overwrite -o "$out/heatmaps"
echo
echo "outputs in $out/"
