#!/usr/bin/env bash
# The library and its unit and official tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (clang, -DBAGNET_SANITIZE=ON), plus each libFuzzer target briefly over its committed corpus
# (-DBAGNET_FUZZ=ON, label fuzz). -Xclang -fno-pch-timestamp lets ccache reuse objects built against
# the precompiled header across fresh clones. Build folder: ${ASAN_BUILD_DIR:-build-asan} (scripts/fuzz.sh uses it too).
# LibTorch and OpenCV are not instrumented: ASan sees our code's memory accesses and every heap
# block (malloc is intercepted process-wide), UBSan only our code. The CPU block cache is off in
# this build (it would hide use-after-free).
# Run: every unit test, test_checkpoint (the official checkpoints through the unpickler and zip
# reader), test_dense's Winograd kernel and option checks (our hand-written kernel), and the fuzz
# targets (label fuzz). Not run, to keep CI under 50 minutes: test_official and the other test_dense
# cases (5-9 minutes each under ASan, nearly all of it inside LibTorch's uninstrumented kernels),
# and the cli, install, browser and slurm tests (the real binary's behaviour, covered by the plain
# build; under ASan they would double CI time).
# Usage: bash scripts/test-sanitized.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ASAN_BUILD_DIR:-build-asan}
shared=${BAGNET_SHARED_DIR:-../shared}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS="-Xclang -fno-pch-timestamp" -DBAGNET_SANITIZE=ON -DBAGNET_FUZZ=ON -DBAGNET_BUILD_BENCH=OFF \
    -DBAGNET_SHARED_DIR="$(realpath -m "$shared")" >/dev/null
fi
# Every test labelled unit or fuzz (so a new unit test is never left unbuilt), plus test_checkpoint and
# test_dense (run below); a target is built only where configure made it (those two need the fixtures).
mapfile -t tests < <(ctest --test-dir "$build" -N -L 'unit|fuzz' | sed -n 's/^ *Test *#[0-9]*: *//p')
tests+=(test_checkpoint test_dense)
targets=()
for t in "${tests[@]}"; do
  grep -q "^$t:" "$build/Makefile" 2>/dev/null && targets+=(--target "$t")
done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
# detect_leaks: LibTorch's and OpenCV's process-lifetime singletons are not leaks of ours; they are
# suppressed by name in tests/sanitizer/lsan.supp, everything else is reported.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" -L 'unit|fuzz' --output-on-failure -j"$(nproc)"
ctest --test-dir "$build" -R '^test_checkpoint$' --output-on-failure
if [ -x "$build/tests/test_dense" ]; then
  (cd "$build/tests" && ./test_dense --test-case='Winograd*,bad dense options*')
fi
