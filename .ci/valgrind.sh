#!/usr/bin/env bash
# valgrind memcheck over the examples of examples/ (the C ABI example, the C++ walkthrough and the
# demo with its short benchmark): no invalid access, no use of uninitialised memory, and no leak
# (definite, indirect or possible) except libgomp's thread pool, which tests/valgrind.supp names.
# valgrind does not emulate AVX-512 and its CPUID does not report it, so the kernels run their
# AVX2 path here; the two short examples run once more on SSE2 (SIMDATTN_ISA=sse2). About 1-2
# minutes on 2 cores, most of it the demo's benchmark under valgrind.
#
#   .ci/valgrind.sh        (SIMDATTN_JOBS=n: build parallelism, default 2;
#                           SIMDATTN_VALGRIND_DIR=dir: build directory, default build-valgrind)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
build=${SIMDATTN_VALGRIND_DIR:-$repository/build-valgrind}
command -v valgrind >/dev/null || { echo "valgrind is not installed (Debian: apt-get install valgrind)" >&2; exit 1; }
mkdir -p "$build"

started=$SECONDS
# -O2 -g: optimised code as users run it, with line numbers in valgrind's reports.
cmake -S "$repository" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIMDATTN_BUILD_TESTS=OFF \
  -DSIMDATTN_BUILD_BENCH=OFF -DSIMDATTN_BUILD_EXAMPLES=ON -DSIMDATTN_INSTALL=OFF \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target simdattn_c_attention simdattn_walkthrough simdattn_demo

failures=0
# memcheck <isa> <example>: runs it under valgrind, prints the verdict, keeps the log on failure.
memcheck() {
  local isa=$1 example=$2 log="$build/valgrind-$2-$1.log" begin=$SECONDS status=0
  SIMDATTN_ISA=$isa valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes \
    --suppressions="$repository/tests/valgrind.supp" --error-exitcode=99 \
    "$build/examples/$example" >"$log" 2>&1 || status=$?
  if [[ $status -eq 0 ]]; then
    printf '  %-22s %-6s clean (%d s)\n' "$example" "$isa" $((SECONDS - begin))
  else
    printf '  %-22s %-6s FAILED with status %d; its log:\n' "$example" "$isa" "$status"
    sed 's/^/    /' "$log"
    failures=$((failures + 1))
  fi
}

printf '\nvalgrind memcheck over the examples\n'
for isa in avx2 sse2; do
  memcheck "$isa" simdattn_c_attention
  memcheck "$isa" simdattn_walkthrough
done
memcheck avx2 simdattn_demo

if [[ $failures -ne 0 ]]; then
  printf '\nvalgrind: %d run(s) failed\n' "$failures"
  exit 1
fi
printf '\nvalgrind: every example clean (%d s, build included)\n' $((SECONDS - started))
