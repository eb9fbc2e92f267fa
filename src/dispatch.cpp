// Chooses the ISA once per process: the best registered one this CPU runs, capped by SIMDATTN_ISA.
#include "dispatch.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <xsimd/xsimd.hpp>

#include "simdattn/simdattn.hpp"

namespace simdattn::detail {
namespace {

Isa best_isa_of_this_cpu() {
  static const Isa best = [] {
    const auto cpu = xsimd::available_architectures();
    Isa found = Isa{};  // value 0: the processor's baseline, which every CPU of it runs
    for_each_isa([&](auto entry) {
      if (IsaTraits<decltype(entry)::value>::runs_on(cpu)) found = entry.value;
      return false;  // visit every entry: the last one the CPU runs is the best
    });
    return found;
  }();
  return best;
}

std::string accepted_isa_names() {
  std::string names;
  for_each_isa([&](auto entry) {
    if (!names.empty()) names += ", ";
    names += IsaTraits<decltype(entry)::value>::name;
    return false;
  });
  return names;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// A cap can only lower the choice: a value above what the CPU runs leaves the CPU's best, so a
// cap can never make the library execute an illegal instruction.
Isa capped_by_environment(Isa best) {
  const std::optional<Isa> cap = parse_isa_cap(std::getenv("SIMDATTN_ISA"));
  return cap && *cap < best ? *cap : best;
}

// -1: no override on this thread; otherwise the Isa's value.
thread_local int isa_override = -1;

}  // namespace

std::optional<Isa> parse_isa_cap(const char* value) {
  if (value == nullptr) return std::nullopt;
  std::string_view text(value);
  const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  std::optional<Isa> found;
  for_each_isa([&](auto entry) {
    if (!equal_ignoring_case(text, IsaTraits<decltype(entry)::value>::name)) return false;
    found = entry.value;
    return true;
  });
  if (found) return found;
  // "simdattn: ", not "simdattn::<function>: ": the C ABI keeps this prefix as it is.
  throw std::invalid_argument("simdattn: SIMDATTN_ISA='" + std::string(value) +
                              "' names no instruction set; expected one of " +
                              accepted_isa_names() +
                              " (any case), or unset or blank for the CPU's best");
}

Isa active_isa_enum() {
  // A function-local static: initialised once, thread-safely, and never written again. When
  // SIMDATTN_ISA is invalid the initialisation throws, stays undone, and the next call throws
  // again.
  static const Isa active = capped_by_environment(best_isa_of_this_cpu());
  return active;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for_each_isa([&](auto entry) {
    if (entry.value <= best_isa_of_this_cpu()) isas.push_back(entry.value);
    return false;
  });
  return isas;
}

ScopedIsaOverride::ScopedIsaOverride(Isa isa) : previous_(isa_override) {
  isa_override = static_cast<int>(isa < best_isa_of_this_cpu() ? isa : best_isa_of_this_cpu());
}

ScopedIsaOverride::~ScopedIsaOverride() { isa_override = previous_; }

Isa isa_for_this_call() {
  return isa_override >= 0 ? static_cast<Isa>(isa_override) : active_isa_enum();
}

}  // namespace simdattn::detail

namespace simdattn {

const char* active_isa() { return detail::isa_name(detail::active_isa_enum()); }

const char* version() { return SIMDATTN_VERSION_STRING; }

}  // namespace simdattn
