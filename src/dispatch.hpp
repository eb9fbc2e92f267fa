// Which instruction set the kernels run with, chosen once per process and cached.
#pragma once

#include <vector>

namespace simdattn::detail {

enum class Isa { sse2 = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);

// The best ISA this CPU runs, capped by SIMDATTN_ISA when it is set (read once).
Isa active_isa_enum();

// Every ISA this CPU runs, lowest first (what the tests iterate over).
std::vector<Isa> supported_isas();

// For the calling thread only, caps the ISA of the calls it makes while the object lives; the
// tests use it to run every path the host supports in one process.
class ScopedIsaOverride {
 public:
  explicit ScopedIsaOverride(Isa isa);
  ~ScopedIsaOverride();
  ScopedIsaOverride(const ScopedIsaOverride&) = delete;
  ScopedIsaOverride& operator=(const ScopedIsaOverride&) = delete;

 private:
  int previous_;
};

// The ISA the calling thread's next call uses: its override if any, else active_isa_enum().
Isa isa_for_this_call();

}  // namespace simdattn::detail
