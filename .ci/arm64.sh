#!/usr/bin/env bash
# The AArch64 build: cross-compiled with Debian's g++-aarch64-linux-gnu
# (cmake/toolchains/aarch64-linux-gnu.cmake), GoogleTest cross-built from Debian's googletest
# sources, benchmarks off; then
#   1. the NEON micro-kernels' k loops, counted in the compiled unit: FMAs and loads, no spills
#      (scripts/count-tile-instructions; it fails the run if one spills);
#   2. a subset of the test suite under qemu-user (qemu-aarch64-static as
#      CMAKE_CROSSCOMPILING_EMULATOR), chosen below, since the whole suite does not fit CI's
#      budget under emulation.
#
#   .ci/arm64.sh [--all]   --all: the whole suite under emulation instead of the subset
#                          (SIMDATTN_JOBS=n: parallelism, default 2;
#                           SIMDATTN_ARM64_DIR=dir: build directory, default build-arm64)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
build=${SIMDATTN_ARM64_DIR:-$repository/build-arm64}
toolchain=$repository/cmake/toolchains/aarch64-linux-gnu.cmake
all=0
case ${1-} in
  "") ;;
  --all) all=1 ;;
  *) echo "usage: .ci/arm64.sh [--all]" >&2; exit 2 ;;
esac
cd "$repository"
"$repository/scripts/install-deps" arm64
started=$SECONDS
mkdir -p "$build"

# GoogleTest for the target, from Debian's sources (/usr/src/googletest, package googletest):
# built once, then reused from $build/googletest-install.
gtest=$build/googletest-install
if [[ ! -f $gtest/lib/cmake/GTest/GTestConfig.cmake ]]; then
  cmake -S /usr/src/googletest -B "$build/googletest" --toolchain "$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF -DCMAKE_INSTALL_PREFIX="$gtest" \
    >"$build/googletest.log" 2>&1 || { cat "$build/googletest.log"; exit 1; }
  cmake --build "$build/googletest" -j "$jobs" >>"$build/googletest.log" 2>&1 \
    || { cat "$build/googletest.log"; exit 1; }
  cmake --install "$build/googletest" >>"$build/googletest.log" 2>&1
fi

# The subset under emulation. The whole suite (1525 tests) takes over 15 minutes under qemu on
# 2 cores, more than CI's budget; every ctest test is one process of the test binary under qemu
# (0.3-0.5 s to start) running one gtest test, 10-50 times slower than natively. What runs:
subset=(
  # the NEON micro-kernel's tile edges (test_neon_tiles.cpp): every row count of every panel, and
  # attention() around every panel, micro-tile, tile and key-block edge, against the oracle;
  '^NeonTiles\.'
  # every oracle comparison of attention() over test_attention.cpp's shapes (every tail and block
  # edge of the x86 widths, decoding and GQA, masks, windows, soft-cap, ALiBi, lse), fused and
  # composed; `automatic` picks one of the two per shape, so it adds no path (as in sanitize.sh);
  '^AllCases/Attention\.MatchesOracle/neon_(fused|composed)_'
  # bitwise thread invariance, every path;
  '^AllPaths/ThreadCountInvariance\.'
  # hostile inputs: overflowing sizes, unknown dtypes, aliasing outputs, head_dim 0;
  '^HardeningHostileInputs\.'
  # the kernels on their own on NEON (GEMM, online softmax, transpose, exp/exp2 over the whole
  # normal range, conversions under a hostile FPCR, softmax rows, merge);
  '^Isa/'
  # the registry, SIMDATTN_ISA, the sealed unit's symbols, the C ABI from C, two examples.
  '^(IsaRegistry|IsaCap)\.' '^isa\.' '^package\.c_abi$' '^example\.(walkthrough|c_attention)$'
)
# Left out, each covered on x86 by scripts/test and sharing the NEON code exercised above: the
# dtype matrix (TypedAttention, 336 tests), the stages' shapes (192), weights outputs (166),
# serving, sinks, non-finite values, validation (no ISA involved) and the two examples that time
# themselves (demo, cascade_attention).
# The test files that hold those tests: only they are compiled for the subset (about half the
# suite's compile time under the cross compiler).
subset_files=(test_neon_tiles.cpp test_attention.cpp test_hardening_concurrency.cpp
  test_hardening_hostile_inputs.cpp test_isa_registry.cpp test_kernels.cpp test_convert.cpp
  test_convert_kernels.cpp test_merge_states.cpp test_stages.cpp test_transpose.cpp
  test_vector_math.cpp test_attention_sinks.cpp test_key_shard.cpp)
if ((all)); then
  tests=()
  files=""
else
  tests=(-R "$(IFS='|'; echo "${subset[*]}")")
  files=$(IFS=';'; echo "${subset_files[*]}")
fi

cmake -S . -B "$build/suite" --toolchain "$toolchain" -DCMAKE_BUILD_TYPE=Release \
  -DSIMDATTN_BUILD_TESTS=ON -DSIMDATTN_BUILD_BENCH=OFF -DSIMDATTN_BUILD_EXAMPLES=ON \
  -DSIMDATTN_TEST_FILES="$files" \
  -DCMAKE_PREFIX_PATH="$gtest" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build/suite" -j "$jobs"
built=$SECONDS

scripts/count-tile-instructions "$build/suite/src/CMakeFiles/simdattn_kernels_neon.dir/arch/kernels.cpp.o"

ctest --test-dir "$build/suite" --output-on-failure --no-tests=error -j "$jobs" "${tests[@]}"
printf '\nAArch64 cross build in %d s, tests under qemu in %d s\n' $((built - started)) $((SECONDS - built))
