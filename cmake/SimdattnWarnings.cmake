# Warnings as errors on the project's own code only (never on the dependencies' headers).
add_library(simdattn_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(simdattn_warnings INTERFACE -Wall -Wextra -Werror)
endif()
