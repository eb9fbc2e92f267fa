/* simdattn/version.h: the version of these headers as numbers, for compile-time checks from C and
 * C++ (#if SIMDATTN_VERSION >= 100 ...). simdattn_version() and simdattn::version() give the
 * version of the library actually loaded, which a program can compare with these at run time.
 * They equal the project version in CMakeLists.txt: configuring refuses to build when they differ
 * (src/CMakeLists.txt), and the tests compare them with version() and simdattn_version(). */
#ifndef SIMDATTN_VERSION_H
#define SIMDATTN_VERSION_H

#define SIMDATTN_VERSION_MAJOR 0
#define SIMDATTN_VERSION_MINOR 1
#define SIMDATTN_VERSION_PATCH 0

/* MAJOR * 10000 + MINOR * 100 + PATCH: 0.1.0 is 100, 1.2.3 would be 10203. */
#define SIMDATTN_VERSION \
  (SIMDATTN_VERSION_MAJOR * 10000 + SIMDATTN_VERSION_MINOR * 100 + SIMDATTN_VERSION_PATCH)

#endif /* SIMDATTN_VERSION_H */
