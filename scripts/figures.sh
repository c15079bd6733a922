#!/usr/bin/env bash
# Regenerates every figure in docs/images from the commands README.md shows next to them, so the
# pictures always come from what they claim to come from. Uses the bundled default model with the
# examples of assets/examples/, and the official-format BagNet-33 test checkpoint with a fixture
# photo of ../shared/fixtures/official (decompressed into the build folder).
#   bash scripts/figures.sh        (builds bagnet first when ${BUILD_DIR:-build} has none)
# Fails when docs/images holds a PNG that none of these commands wrote (a figure nobody can remake).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
bin="$build_dir/apps/bagnet/bagnet"
[ -x "$bin" ] || bash scripts/build.sh >/dev/null
shared=../shared/fixtures/official
mkdir -p build/figures docs/images
# README writes the commands with `bagnet` and the weights under build/figures.
bagnet() { "$bin" "$@"; }

[ -f build/figures/bagnet33-s33.pth.tar ] || xz -dc "$shared/bagnet33-s33.pth.tar.xz" > build/figures/bagnet33-s33.pth.tar

made=()
# --- the commands shown in README.md (keep them identical) ---
bagnet heatmap assets/examples/0013_dress.png --style panel --overwrite -o docs/images
made+=(docs/images/0013_dress.panel.png)
bagnet heatmap assets/examples/0013_dress.png --class dress --vs coat --style panel --overwrite -o docs/images
made+=(docs/images/0013_dress.panel-vs-4-coat.png)
bagnet heatmap ../shared/fixtures/official/images/chelsea-224x224.png --weights build/figures/bagnet33-s33.pth.tar --overwrite -o docs/images
made+=(docs/images/chelsea-224x224.top1.png)
# ---
# The evidence browser's screenshots: a Fashion-MNIST run in headless Chromium (tests/browser).
/usr/bin/python3 tests/browser/site_e2e.py --bagnet "$bin" --fashion-mnist /usr/share/datasets/fashion-mnist \
  --work build/figures/site-e2e >/dev/null
cp build/figures/site-e2e/screenshots/overview.png docs/images/browser-overview.png
cp build/figures/site-e2e/screenshots/sample-view.png docs/images/browser-sample.png
made+=(docs/images/browser-overview.png docs/images/browser-sample.png)

stray=0
for png in docs/images/*.png; do
  keep=0
  for m in "${made[@]}"; do [ "$png" = "$m" ] && keep=1; done
  if [ $keep = 0 ]; then
    echo "error: $png is not made by scripts/figures.sh: add its command or remove it" >&2
    stray=1
  fi
done
[ $stray = 0 ]
echo "regenerated: ${made[*]}"
