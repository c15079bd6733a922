#!/usr/bin/env bash
# Fashion-MNIST test accuracy against the BagNet patch size q (docs/patch-size-table.md): trains the
# same small BagNet with 3x3 kernels in more or fewer stages (kernel3), everything else equal, then
# evaluates each on the test set with `bagnet eval`. Short runs on purpose (CPU time is scarce).
#   bash scripts/patch-size-table.sh [OUT_DIR]       (default: runs/patch-size)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/patch-size}
F=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
bagnet=${BAGNET:-build/apps/bagnet/bagnet}
mkdir -p "$out"
recipe=(--labels assets/fashion-mnist-classes.txt --limit 20000 --epochs 2 --batch-size 64 --lr 0.1 --nesterov
        --flip --seed 1 --threads 1)
echo "| q | kernel3 | map on 28x28 | test top-1 | test top-5 | training time |"
echo "|---|---|---|---|---|---|"
for kernel3 in 0-0-0-0 1-0-0-0 1-1-0-0 1-1-1-0; do
  arch="blocks=1-1-1-1,kernel3=$kernel3,strides=2-1-1-1,widths=8-16-32-32,stem=16,in=1"
  model="$out/k$kernel3.pt"
  "$bagnet" train "$F/train-images-idx3-ubyte.gz" --arch "$arch" "${recipe[@]}" -o "$model" --json \
      > "$model.train.json" 2> "$model.train.log"
  "$bagnet" eval "$F/t10k-images-idx3-ubyte.gz" --weights "$model" --json --threads 1 > "$model.eval.json"
  python3 - "$model" <<'PY'
import json, sys
model = sys.argv[1]
train = json.load(open(model + ".train.json"))
ev = json.load(open(model + ".eval.json"))
q = train["receptive_field"]
side = (28 - q) // train["stride"] + 1
kernel3 = train["architecture"].split("kernel3=")[1].split(",")[0]
print(f"| {q} | {kernel3} | {side}x{side} | {100 * ev['top1']:.2f}% | {100 * ev['top5']:.2f}% | "
      f"{train['training']['training_seconds'] / 60:.1f} min |")
PY
done
