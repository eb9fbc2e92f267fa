// Which instruction set the kernels run with, chosen once per process and cached. The ISAs
// themselves are declared in isa/registry.hpp.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "isa/registry.hpp"

namespace simdattn::detail {

// The ISA calls run with (read once): the one SIMDATTN_ISA names when the CPU runs it; else the
// best this CPU runs that is its default (avx512bf16 is only on AMD: IsaTraits). Throws
// std::invalid_argument, at every call, when SIMDATTN_ISA holds no registered name
// (parse_isa_cap).
Isa active_isa_enum();

// SIMDATTN_ISA's value as a cap: a registered name (isa_name), compared case-insensitively after
// trimming blanks; nullopt for no value (nullptr) or one that is blank, which leaves the CPU's
// default. Anything else throws std::invalid_argument naming SIMDATTN_ISA, the value and the
// accepted names: a misspelt cap must not silently run another ISA than the one asked for.
std::optional<Isa> parse_isa_cap(const char* value);

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
