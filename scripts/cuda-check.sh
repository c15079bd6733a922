#!/usr/bin/env bash
# Builds the LibTorch-only core, its tests and the benchmarks against a CUDA build of LibTorch (no
# OpenCV needed), runs the model tests on the GPU (BAGNET_TEST_DEVICE=cuda: the official outputs and
# dense heatmaps are compared there), then prints the benchmarks on the GPU.
#   scripts/cuda-check.sh TORCH_CMAKE_PREFIX [BUILD_DIR]
# e.g. scripts/cuda-check.sh "$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
# Extra CMake arguments (e.g. -DBAGNET_SHARED_DIR=...) can be given in BAGNET_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: scripts/cuda-check.sh TORCH_CMAKE_PREFIX [BUILD_DIR]}
build=${2:-build-cuda}
jobs=$(nproc)

# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBAGNET_BUILD_VISION=OFF \
  -DCMAKE_PREFIX_PATH="$prefix${CMAKE_PREFIX_PATH:+;$CMAKE_PREFIX_PATH}" ${BAGNET_CMAKE_ARGS:-}
cmake --build "$build" -j "$jobs"
(cd "$build" && BAGNET_TEST_DEVICE=cuda ctest --output-on-failure -j 2)
"$build/bench/bench_evidence" --device cuda --repeats 5
"$build/bench/bench_layers" --device cuda --repeats 5
