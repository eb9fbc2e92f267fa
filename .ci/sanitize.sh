#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer: configures the
# `asan-ubsan` preset of CMakePresets.json (g++, -O1 -g, asserts on, -fno-sanitize-recover=all),
# builds everything it enables and runs its test preset, which sets ASAN_OPTIONS (leak checks
# on) and UBSAN_OPTIONS. The library fills its scratch with NaN as it allocates it
# (SIMDATTN_POISON_SCRATCH), so that reading scratch before writing it fails a test. The gtest
# cases run as 4 shard processes (a process per case spent more on ASan's start-up and exit
# than on the cases) and leave out HardeningMemory.* (a resident-set
# bound that would measure ASan's shadow memory; the release run has it) and the amx instances of
# the fp32-only suites, which run the avx512 kernels' source (CMakePresets.json says which). Any report fails the
# run. About 4-5 minutes of tests after the build on 2 cores.
#
#   .ci/sanitize.sh        (SIMDATTN_JOBS=n: parallelism, default 2;
#                           SIMDATTN_SANITIZE_DIR=dir: build directory, default build-sanitize)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
build=${SIMDATTN_SANITIZE_DIR:-$repository/build-sanitize}
cd "$repository"
mkdir -p "$build"

started=$SECONDS
cmake --preset asan-ubsan -B "$build" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs"
ctest --preset asan-ubsan --test-dir "$build" -j "$jobs"
printf '\nsanitizer suite passed in %d s (build and tests)\n' $((SECONDS - started))
