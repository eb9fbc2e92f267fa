#!/usr/bin/env bash
# Packaging test: builds the library alone twice (static, then shared), installs each with
# `cmake --install --prefix` into a temporary tree it was not configured for (so every installed
# path must be relocatable), and runs tests/package/run-consumers.sh against each install:
# find_package and pkg-config consumers in C and C++ (and simdattn::mpi on 2 ranks where MPI is
# installed), and for the shared one its SONAME, its
# exported symbols (nm -D) and the Python ctypes example. About 2-3 minutes on 2 cores.
#
#   .ci/package-test.sh            (SIMDATTN_JOBS=n to change the parallelism, default 2;
#                                   SIMDATTN_KEEP=1 to keep the temporary tree for inspection)
set -euo pipefail

repository=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${SIMDATTN_JOBS:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/simdattn-package.XXXXXX")
if [[ ${SIMDATTN_KEEP:-0} == 1 ]]; then
  echo "keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

for kind in static shared; do
  shared=OFF
  [[ $kind == shared ]] && shared=ON
  printf '\n==== %s library: configure, build, install\n' "$kind"
  cmake -S "$repository" -B "$work/build-$kind" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=$shared -DSIMDATTN_INSTALL=ON -DSIMDATTN_BUILD_TESTS=OFF \
    -DSIMDATTN_BUILD_BENCH=OFF -DSIMDATTN_BUILD_EXAMPLES=OFF >"$work/configure-$kind.log" ||
    { cat "$work/configure-$kind.log"; exit 1; }
  # Everything the configuration enables: the library, and simdattn::mpi where MPI is found.
  cmake --build "$work/build-$kind" -j "$jobs"
  cmake --install "$work/build-$kind" --prefix "$work/prefix-$kind" >"$work/install-$kind.log" ||
    { cat "$work/install-$kind.log"; exit 1; }
  sed 's/^/  /' "$work/install-$kind.log"
  "$repository/tests/package/run-consumers.sh" "$work/prefix-$kind" "$kind" "$work/consumers-$kind"
done

printf '\npackage test passed: static and shared installs work for find_package (simdattn::mpi too where MPI is installed), pkg-config, C, C++ and Python\n'
