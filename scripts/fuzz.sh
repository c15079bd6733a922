#!/usr/bin/env bash
# Runs one libFuzzer target (tests/fuzz/fuzz_TARGET.cpp) for SECONDS seconds under AddressSanitizer +
# UndefinedBehaviorSanitizer, building it first (clang, -DBAGNET_SANITIZE=ON -DBAGNET_FUZZ=ON) in
# ${FUZZ_BUILD_DIR:-build-asan}.
#
#   bash scripts/fuzz.sh TARGET SECONDS     e.g.  bash scripts/fuzz.sh checkpoint 1800
#   bash scripts/fuzz.sh --list
#
# Inputs: the committed corpus (tests/fuzz/corpus/TARGET), seeds taken from the fixtures
# (../shared/fixtures/official: images, the pickles inside the checkpoints) and the dictionary
# tests/fuzz/dict/TARGET.dict. New inputs accumulate in BUILD/fuzz/corpus/TARGET across runs; a
# crash, timeout, leak or out-of-memory input is written to BUILD/fuzz/findings/TARGET/ and the run
# stops there (make it a regression test: copy it into tests/fuzz/corpus/TARGET and fix the code).
# FUZZ_NO_BUILD=1 runs the binary as it is (e.g. while another build uses the folder).
# The last line says executions per second, corpus size and findings. Exit 0 = no finding.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(unpickler zip checkpoint model_meta report_lines idx csv image report_folder)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${targets[@]}"; exit 0; fi
if [ $# -ne 2 ] || ! [[ " ${targets[*]} " == *" $1 "* ]] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: bash scripts/fuzz.sh TARGET SECONDS   (TARGET: ${targets[*]})" >&2
  exit 2
fi
target=$1 seconds=$2
build=${FUZZ_BUILD_DIR:-build-asan}
shared=${BAGNET_SHARED_DIR:-../shared}

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAGNET_SANITIZE=ON \
    -DBAGNET_FUZZ=ON -DBAGNET_BUILD_BENCH=OFF -DBAGNET_SHARED_DIR="$(realpath -m "$shared")" >/dev/null
fi
[ -n "${FUZZ_NO_BUILD:-}" ] || cmake --build "$build" -j"$(nproc)" --target "fuzz_$target" >/dev/null

work="$build/fuzz/corpus/$target" findings="$build/fuzz/findings/$target" seeds="$build/fuzz/seeds/$target"
mkdir -p "$work" "$findings" "$seeds"
# Seeds from the fixtures, when they are there.
official="$shared/fixtures/official"
case $target in
  image)
    [ -d "$official/images" ] && cp -f "$official"/images/* "$seeds"/ 2>/dev/null || true
    cp -f assets/examples/*.png "$seeds"/ ;;
  unpickler)
    # The pickles inside the official checkpoints: the zip file's data.pkl, the legacy file's five.
    if [ -f "$official/bagnet9-s9-zip.pt.xz" ]; then
      /usr/bin/env python3 - "$official" "$seeds" <<'PY'
import io, lzma, pickletools, sys, zipfile
official, seeds = sys.argv[1], sys.argv[2]
raw = lzma.open(f"{official}/bagnet9-s9-zip.pt.xz").read()
with zipfile.ZipFile(io.BytesIO(raw)) as z:
    for name in z.namelist():
        if name.endswith(".pkl"):
            open(f"{seeds}/zip-data.pkl", "wb").write(z.read(name))
legacy = io.BytesIO(lzma.open(f"{official}/bagnet9-s9.pth.tar.xz").read(1 << 20))
for i in range(5):
    start = legacy.tell()
    for _ in pickletools.genops(legacy):
        pass
    end = legacy.tell()
    legacy.seek(start)
    open(f"{seeds}/legacy-{i}.pkl", "wb").write(legacy.read(end - start))
PY
    fi ;;
esac

log="$build/fuzz/$target.log"
echo "fuzzing $target for ${seconds}s (log: $log)" >&2
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=4096 -timeout=60 \
  -max_len=1048576 -print_final_stats=1 -artifact_prefix="$findings/" \
  -dict="tests/fuzz/dict/$target.dict" "$work" "tests/fuzz/corpus/$target" "$seeds" >"$log" 2>&1 || status=$?

runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
inputs=$(find "$work" -type f | wc -l)
bytes=$(du -sb "$work" | cut -f1)
found=$(find "$findings" -type f | wc -l)
echo "$target: $runs executions in ${seconds}s ($rate/s), coverage $cov edges, corpus $inputs inputs ($bytes bytes), $found finding(s) in $findings"
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
  grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 >&2 || true
  exit 1
fi
