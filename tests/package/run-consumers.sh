#!/usr/bin/env bash
# Uses an installed simdattn the ways a user would, and fails on the first thing that breaks:
#   1. a CMake project with find_package(simdattn CONFIG): a C++ and a C program, built and run;
#      with COMPONENTS mpi, simdattn::mpi on 2 ranks (or, for an install without it, the refusal);
#   2. a C program compiled by the C compiler alone with `pkg-config --cflags --libs [--static]`;
#   3. for a shared install: the SONAME carries the major version, the consumers really load the
#      shared library, nm -D shows the public API and nothing else, and Python's ctypes runs it.
#
#   run-consumers.sh <install prefix> <static|shared> <scratch directory>
set -euo pipefail

prefix=$(cd "$1" && pwd)
kind=$2
work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repository=$(cd "$here/../.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
case $kind in static | shared) ;; *) echo "kind must be static or shared, got '$kind'" >&2; exit 2 ;; esac
mkdir -p "$work"

step() { printf '\n== [%s] %s\n' "$kind" "$*"; }
fail() { printf 'FAILED [%s]: %s\n' "$kind" "$*" >&2; exit 1; }
# Runs a consumer program and demands its success line.
run_expecting() {
  local expected=$1; shift
  local output status=0
  output=$("$@" 2>&1) || status=$?
  printf '%s\n' "$output"
  [[ $status -eq 0 ]] || fail "$* exited with status $status"
  grep -q "$expected" <<<"$output" || fail "$* did not print '$expected'"
}
# Whether the ELF file $1 lists libsimdattn among its NEEDED shared libraries.
needs_libsimdattn() { readelf -d "$1" | grep -q 'NEEDED.*libsimdattn\.so'; }

pc_file=$(find "$prefix" -name simdattn.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n $pc_file ]] || fail "no pkgconfig/simdattn.pc under $prefix"
libdir=$(cd "$(dirname "$pc_file")/.." && pwd)

step "find_package(simdattn CONFIG) consumer"
cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "configuring the consumer project"; }
cmake --build "$work/consumer" -j "$jobs" || fail "building the consumer project"
run_expecting "cpp_consumer ok" "$work/consumer/cpp_consumer"
run_expecting "c_consumer ok" "$work/consumer/c_consumer"

# simdattn::mpi: installed whenever the build found MPI, which a machine with mpirun has (Debian's
# libopenmpi-dev brings both); then a consumer runs it on 2 ranks. Without it, asking for the
# component must fail with the package's reason.
if [[ -n $(find "$prefix" -name simdattnMpiTargets.cmake) ]]; then
  step "find_package(simdattn CONFIG COMPONENTS mpi) consumer on 2 ranks"
  [[ -n $(find "$prefix" -path '*/include/simdattn/mpi.hpp') ]] || fail "simdattn::mpi is installed without simdattn/mpi.hpp"
  cmake -S "$here/mpi_consumer" -B "$work/mpi_consumer" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/mpi-consumer-configure.log" 2>&1 ||
    { cat "$work/mpi-consumer-configure.log"; fail "configuring the simdattn::mpi consumer"; }
  cmake --build "$work/mpi_consumer" -j "$jobs" || fail "building the simdattn::mpi consumer"
  # Open MPI refuses root (CI containers) unless told, and more ranks than cores without
  # --oversubscribe.
  run_expecting "mpi_consumer ok" env OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe "$work/mpi_consumer/mpi_consumer"
else
  ! command -v mpirun >/dev/null || fail "MPI is installed here, but the install has no simdattn::mpi"
  [[ -z $(find "$prefix" -path '*/include/simdattn/mpi.hpp') ]] || fail "simdattn/mpi.hpp is installed without simdattn::mpi"
  step "find_package(simdattn CONFIG COMPONENTS mpi) without the component"
  if cmake -S "$here/mpi_consumer" -B "$work/mpi_consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$work/mpi-consumer-configure.log" 2>&1; then
    fail "find_package(simdattn COMPONENTS mpi) succeeded on an install without simdattn::mpi"
  fi
  tr -s ' \n' '  ' <"$work/mpi-consumer-configure.log" | grep -q 'built without MPI' ||
    { cat "$work/mpi-consumer-configure.log"; fail "the missing component was refused without the package's reason"; }
  echo "refused as intended: this simdattn was built without MPI"
fi

step "find_package(simdattn CONFIG) from a C-only project"
c_project_log="$work/c-project-configure.log"
if cmake -S "$here/c_project" -B "$work/c_project" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$c_project_log" 2>&1; then
  [[ $kind == shared ]] || fail "a C-only project accepted the static simdattn (it cannot link it)"
  cmake --build "$work/c_project" -j "$jobs" || fail "building the C-only project"
  run_expecting "c_consumer ok" "$work/c_project/c_only_consumer"
else
  [[ $kind == static ]] || { cat "$c_project_log"; fail "configuring the C-only project"; }
  # CMake wraps the message over several lines: compare with whitespace squeezed.
  reason=$(tr -s ' \n' '  ' <"$c_project_log" | grep -o 'this simdattn is a static library[^(]*') ||
    { cat "$c_project_log"; fail "the C-only project was refused without the expected message"; }
  echo "refused as intended: $reason"
fi

step "pkg-config: the C compiler alone"
export PKG_CONFIG_PATH="$(dirname "$pc_file")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
echo "simdattn.pc: version $(pkg-config --modversion simdattn)"
static_flag=()
[[ $kind == static ]] && static_flag=(--static)
read -r -a pc_flags <<<"$(pkg-config --cflags --libs "${static_flag[@]}" simdattn)"
echo "pkg-config --cflags --libs ${static_flag[*]} simdattn: ${pc_flags[*]}"
"${CC:-cc}" -std=c99 -Wall -Wextra -Werror "$here/consumer/c_consumer.c" -o "$work/c_consumer_pkgconfig" \
  "${pc_flags[@]}" -lm || fail "compiling and linking c_consumer.c with pkg-config's flags"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  run_expecting "c_consumer ok" "$work/c_consumer_pkgconfig"

if [[ $kind == static ]]; then
  for program in "$work/consumer/cpp_consumer" "$work/c_consumer_pkgconfig"; do
    ! needs_libsimdattn "$program" || fail "$program loads a shared libsimdattn from a static install"
  done
  printf '\n[static] all consumers ok\n'
  exit 0
fi

step "shared library: SONAME, loading, exported symbols"
major=$(pkg-config --modversion simdattn | cut -d. -f1)
library="$libdir/libsimdattn.so"
[[ -e $library ]] || fail "no $library"
readelf -d "$library" | grep -q "SONAME.*\[libsimdattn\.so\.$major\]" ||
  fail "the SONAME of $library is not libsimdattn.so.$major: $(readelf -d "$library" | grep SONAME)"
echo "SONAME libsimdattn.so.$major"
for program in "$work/consumer/cpp_consumer" "$work/consumer/c_consumer" "$work/c_consumer_pkgconfig"; do
  needs_libsimdattn "$program" || fail "$program does not load the shared libsimdattn"
done
python3 "$here/check_exports.py" "$library" "$prefix/include" || fail "nm -D: the exports are not the public API"

step "Python ctypes example against the installed library"
python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import numpy' 2>/dev/null; then
    python=$candidate
    break
  fi
done
[[ -n $python ]] || fail "no python3 with NumPy (Debian: python3-numpy)"
run_expecting "deliberate error reported" "$python" "$repository/examples/python/simdattn_ctypes.py" "$library"

printf '\n[shared] all consumers ok\n'
