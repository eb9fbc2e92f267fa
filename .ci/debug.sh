#!/usr/bin/env bash
# A Debug build (-O0 -g, assert() on) of the library, its tests and the bench's machine kernels.
# -O0 leaves every inline function and template out of line in every ISA unit, so this is where
# a helper compiled with AVX-512 flags is likeliest to be linked in place of the SSE2 unit's copy;
# by default the script runs the isa-labelled tests, which check that it cannot be (the sealed
# units and their namespaces, tests/isa_symbols.cmake) and that SIMDATTN_ISA caps the ISA. About
# a minute on 2 cores, nearly all of it the build: CI runs this.
#
# --all runs the whole test suite but the benchmark-labelled checks instead, every fast path
# against the oracle with the kernels' asserts on: 10-20 minutes on 2 cores (docs/debug-build.md).
#
#   .ci/debug.sh [--all]   (SIMDATTN_JOBS=n: parallelism, default 2;
#                           SIMDATTN_DEBUG_DIR=dir: build directory, default build-debug)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
build=${SIMDATTN_DEBUG_DIR:-$repository/build-debug}
tests=(--label-regex '^isa$')
case ${1-} in
  "") ;;
  --all) tests=(--label-exclude benchmark) ;;
  *) echo "usage: .ci/debug.sh [--all]" >&2; exit 2 ;;
esac
cd "$repository"
mkdir -p "$build"

started=$SECONDS
# The examples are left out of the quick run only: they add build time and check no seam.
examples=OFF
[[ ${1-} == --all ]] && examples=ON
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSIMDATTN_BUILD_TESTS=ON -DSIMDATTN_BUILD_BENCH=ON \
  -DSIMDATTN_BUILD_EXAMPLES=$examples >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure --no-tests=error -j "$jobs" "${tests[@]}"
printf '\nDebug build and tests passed in %d s\n' $((SECONDS - started))
