# The library's own dependencies: found on the system, never vendored or downloaded.
find_package(xsimd 8 REQUIRED CONFIG)   # Debian: libxsimd-dev
find_package(OpenMP REQUIRED)           # libgomp with g++, libomp with clang
