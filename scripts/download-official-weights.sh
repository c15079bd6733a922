#!/usr/bin/env bash
# Downloads the three official BagNet checkpoints (Brendel & Bethge, 2019) from the authors'
# repository and checks each file's SHA-256 against the prefix in its name (torch.hub convention).
# Needs network access (curl or wget) and sha256sum. Not run by the tests: nothing here may be
# downloaded at build or test time.
#   bash scripts/download-official-weights.sh [DIR]     (default: weights/)
set -euo pipefail
dir="${1:-weights}"
base="https://bitbucket.org/wielandbrendel/bag-of-feature-pretrained-models/raw/249e8fa82c0913623a807d9d35eeab9da7dcc2a8"
files=(bagnet8-34f4ccd2.pth.tar bagnet16-105524de.pth.tar bagnet32-2ddd53ed.pth.tar)
mkdir -p "$dir"
fetch() {
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null; then wget -q -O "$2" "$1"
  else echo "error: neither curl nor wget is installed" >&2; exit 4; fi
}
status=0
for f in "${files[@]}"; do
  target="$dir/$f"
  expected="${f%.pth.tar}"; expected="${expected##*-}"
  if [ ! -f "$target" ]; then
    echo "downloading $f" >&2
    fetch "$base/$f" "$target.part"
    mv "$target.part" "$target"
  fi
  actual="$(sha256sum "$target" | cut -c1-${#expected})"
  if [ "$actual" = "$expected" ]; then
    echo "ok       $target (sha256 $actual...)"
  else
    echo "MISMATCH $target: sha256 starts with $actual, expected $expected (file removed)" >&2
    rm -f "$target"
    status=3
  fi
done
exit $status
