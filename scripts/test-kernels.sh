#!/usr/bin/env bash
# Runs the numeric tests (labels unit, official, cli) with each oneDNN/ATen kernel family this CPU
# has and with 1 and 2 threads: every tolerance must hold whatever summation order the kernels
# pick (tests/float_error.h). Usage: bash scripts/test-kernels.sh [ISA...]   (after scripts/build.sh)
#   ISA: avx2, avx512 (default: those the CPU supports); BUILD_DIR as for scripts/test.sh;
#   THREADS (default "1 2") and LABELS (default "unit|official|cli") narrow the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
isas=("$@")
if [ ${#isas[@]} -eq 0 ]; then
  grep -qw avx2 /proc/cpuinfo && isas+=(avx2)
  grep -qw avx512f /proc/cpuinfo && isas+=(avx512)
fi
declare -A dnnl=([avx2]=AVX2 [avx512]=AVX512_CORE)
status=0
for isa in "${isas[@]}"; do
  for threads in ${THREADS:-1 2}; do
    echo "== kernels $isa, $threads thread(s)"
    DNNL_MAX_CPU_ISA=${dnnl[$isa]} ATEN_CPU_CAPABILITY=$isa BAGNET_TEST_THREADS=$threads \
      ctest --test-dir "$build_dir" -L "${LABELS:-unit|official|cli}" -E 'test_cli_train' --output-on-failure -j"$(nproc)" || status=1
  done
done
exit $status
