# The library's own dependencies: found on the system, never vendored or downloaded.
find_package(xsimd 8 REQUIRED CONFIG)   # Debian: libxsimd-dev
find_package(OpenMP REQUIRED)           # libgomp with g++, libomp with clang

# Debian's xsimd 8.1 config names "xtl" as a link dependency of the header-only xsimd target
# without defining it, so every consumer would link -lxtl, which does not exist. simdattn uses no
# xtl feature (XSIMD_ENABLE_XTL_COMPLEX is off): drop the stray dependency when xtl is absent.
if(NOT TARGET xtl)
  get_target_property(_simdattn_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_simdattn_xsimd_links)
    list(REMOVE_ITEM _simdattn_xsimd_links xtl)
    set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_simdattn_xsimd_links}")
  endif()
endif()
