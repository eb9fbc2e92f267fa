// SIMDATTN_API marks the symbols of the public interface. Everything else in the library is
// compiled with hidden visibility, so a shared build exports this surface and nothing more.
#pragma once

#if defined(_WIN32) && defined(SIMDATTN_SHARED)
#  if defined(SIMDATTN_BUILDING)
#    define SIMDATTN_API __declspec(dllexport)
#  else
#    define SIMDATTN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define SIMDATTN_API __attribute__((visibility("default")))
#else
#  define SIMDATTN_API
#endif
