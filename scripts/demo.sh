#!/usr/bin/env bash
# The main job: installs what is missing, builds bagnet, then runs it on the bundled default model
# (a BagNet trained on Fashion-MNIST by `bagnet train`, assets/models/) and the example images of
# assets/examples/: info, predict (text and --json), the evidence maps and heatmap pictures, into
# ${OUT_DIR:-out/demo}.
#   bash scripts/demo.sh [WEIGHTS [IMAGE...]]
# WEIGHTS may be any checkpoint (e.g. an official ImageNet BagNet, see README.md) with its images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
build_dir=${BUILD_DIR:-build}
out=${OUT_DIR:-out/demo}
bagnet="$build_dir/apps/bagnet/bagnet"
mkdir -p "$out"

weights=()
if [ $# -gt 0 ]; then
  weights=(--weights "$1")
  shift
fi
images=("$@")
if [ ${#images[@]} -eq 0 ]; then
  images=(assets/examples/*.png)
fi

echo "== bagnet info"
"$bagnet" info "${weights[@]}" | tee "$out/info.txt"
echo
echo "== bagnet predict"
"$bagnet" predict "${images[@]}" "${weights[@]}" --topk 3 | tee "$out/predictions.txt"
"$bagnet" predict "${images[@]}" "${weights[@]}" --topk 3 --json > "$out/predictions.json"
echo
echo "== bagnet evidence (per-patch logits of all classes)"
for image in "${images[@]}"; do
  name=$(basename "${image%.*}")
  "$bagnet" evidence "$image" "${weights[@]}" --class all -o "$out/$name-evidence.npy" > "$out/$name-evidence.txt"
  head -n 1 "$out/$name-evidence.txt"
done
echo
echo "== bagnet heatmap (the paper's style: image | heatmap of the top class)"
"$bagnet" heatmap "${images[@]}" "${weights[@]}" --class top --style panel --overwrite -o "$out/heatmaps"
echo
echo "== bagnet report (evidence reports; the examples' true classes come from assets/examples/labels.csv)"
report_inputs=("${images[@]}")
if [ $# -eq 0 ] && [ ${#weights[@]} -eq 0 ]; then
  report_inputs=(assets/examples/labels.csv)
fi
rm -rf "$out/report"
"$bagnet" report "${report_inputs[@]}" "${weights[@]}" -o "$out/report"
echo
echo "outputs in $out/ (predictions.json: top-3 classes per image; heatmaps/; report/reports.jsonl and summary.json)"
