#!/usr/bin/env bash
# Fuzzes the C ABI for a bounded time: builds the libFuzzer target of tests/fuzz/ with the `fuzz`
# preset of CMakePresets.json (clang, -fsanitize=fuzzer,address,undefined), replays the seed
# corpus (tests/fuzz/corpus), then mutates it for SIMDATTN_FUZZ_SECONDS (default 60). Inputs the
# fuzzer finds go to a scratch corpus, never into the repository. On a failure the input that
# caused it is kept in <build>/fuzz-artifacts/ and named in the output; reproduce it with
#   <build>/tests/simdattn_fuzz_c_abi <that file>
# (SIMDATTN_FUZZ_VERBOSE=1 prints each call's status). About 2-3 minutes with the build.
#
#   .ci/fuzz.sh            (SIMDATTN_FUZZ_SECONDS=n; SIMDATTN_JOBS=n: build parallelism, default 2;
#                           SIMDATTN_FUZZ_DIR=dir: build directory, default build-fuzz)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
seconds=${SIMDATTN_FUZZ_SECONDS:-60}
build=${SIMDATTN_FUZZ_DIR:-$repository/build-fuzz}
command -v clang++ >/dev/null || { echo "clang++ is not installed (Debian: apt-get install clang)" >&2; exit 1; }
cd "$repository"
mkdir -p "$build"

started=$SECONDS
cmake --preset fuzz -B "$build" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target simdattn_fuzz_c_abi
fuzzer="$build/tests/simdattn_fuzz_c_abi"

artifacts="$build/fuzz-artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/simdattn-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts" "$scratch/corpus"

printf '\n== replaying the seed corpus\n'
"$fuzzer" -runs=0 "$repository/tests/fuzz/corpus"

printf '\n== fuzzing for %d s\n' "$seconds"
# -timeout: one call far beyond any small case's time is a hang; -rss_limit_mb: the harness
# holds at most a few views of 2^18 floats. Single process: the library is multithreaded itself.
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" \
  "$scratch/corpus" "$repository/tests/fuzz/corpus" >"$scratch/fuzz.log" 2>&1 || status=$?
grep -E '^(stat::|Done|INFO: seed corpus|#[0-9]+ +DONE)' "$scratch/fuzz.log" || true
if [[ $status -ne 0 ]]; then
  tail -n 60 "$scratch/fuzz.log"
  printf '\nfuzz: FAILED (status %d); inputs kept in %s:\n' "$status" "$artifacts"
  ls -l "$artifacts"
  exit 1
fi
printf '\nfuzz: no failure in %d s of fuzzing (%d s with the build)\n' "$seconds" $((SECONDS - started))
