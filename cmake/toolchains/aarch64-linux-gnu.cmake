# Cross-compiling for AArch64 Linux from an x86-64 Debian machine, with Debian's cross compiler
# (g++-aarch64-linux-gnu: the compiler, binutils, and the arm64 libc, libstdc++ and libgomp under
# /usr/aarch64-linux-gnu), and qemu-user-static running the test binaries:
#   cmake -S . -B build-arm64 --toolchain cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DSIMDATTN_BUILD_BENCH=OFF -DCMAKE_PREFIX_PATH=<a googletest built with this file>
# .ci/arm64.sh does exactly that, googletest included.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SIMDATTN_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${SIMDATTN_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${SIMDATTN_CROSS_TRIPLE}-g++)
# objcopy seals each ISA unit's object (cmake/SimdattnIsas.cmake), nm checks it: the target's.
set(CMAKE_OBJCOPY ${SIMDATTN_CROSS_TRIPLE}-objcopy CACHE FILEPATH "")
set(CMAKE_NM ${SIMDATTN_CROSS_TRIPLE}-nm CACHE FILEPATH "")

# Libraries and packages come from the target's tree (and from CMAKE_PREFIX_PATH, where the
# cross-built googletest is installed), programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${SIMDATTN_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# xsimd is header-only, and Debian's libxsimd-dev (host architecture) installs only headers under
# /usr/include and a config that points there: the host's copy serves the target.
if(NOT DEFINED xsimd_DIR)
  file(GLOB SIMDATTN_HOST_XSIMD_CONFIG /usr/lib/*-linux-gnu/cmake/xsimd/xsimdConfig.cmake)
  if(SIMDATTN_HOST_XSIMD_CONFIG)
    list(GET SIMDATTN_HOST_XSIMD_CONFIG 0 SIMDATTN_HOST_XSIMD_CONFIG)
    get_filename_component(xsimd_DIR "${SIMDATTN_HOST_XSIMD_CONFIG}" DIRECTORY)
    set(xsimd_DIR "${xsimd_DIR}" CACHE PATH "xsimd's CMake config (header-only: the host's)")
  endif()
endif()

# Test binaries run under user-mode emulation; -L: the target's dynamic loader and libraries.
find_program(SIMDATTN_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(SIMDATTN_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SIMDATTN_QEMU_AARCH64};-L;/usr/${SIMDATTN_CROSS_TRIPLE}"
      CACHE STRING "runs the target's programs on the host")
endif()
