// The micro-kernel shape of the key-major tiles (keys as rows, query columns in panels of 1, 2 or 4
// registers), and the dispatch from the plan's panel width to a tile instantiated for it. The
// sizes come from the ISA's blocking table (isa/registry.hpp, kernels/blocking.hpp).
#pragma once

#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "isa/registry.hpp"
#include "kernels/isa_namespace.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// The micro-kernel shape of a key-major tile whose columns come in panels of Vectors registers.
template <class Arch, int Vectors>
struct KeyMajorTile {
  static_assert(Vectors == 1 || Vectors == 2 || Vectors == 4, "panels are 1, 2 or 4 registers");
  static constexpr int64_t kPanel = Vectors * static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  static constexpr int kRows = blocking_of<Arch>().micro_rows[Vectors == 4 ? 2 : Vectors - 1];
  static_assert(kRows > 0, "no micro-kernel of this panel width on this ISA");
};

// Calls run(std::integral_constant<int, V>{}) for the plan's panel width V (1, 2 or the ISA's
// widest), so that each tile kernel is instantiated once per panel width the ISA has.
template <class Arch, class Run>
inline void with_panel_vectors(int panel_vectors, Run&& run) {
  constexpr int kWide = blocking_of<Arch>().wide_vectors;
  if (panel_vectors == 1) {
    run(std::integral_constant<int, 1>{});
  } else if (panel_vectors == 2 || kWide == 2) {
    run(std::integral_constant<int, 2>{});
  } else {
    run(std::integral_constant<int, kWide>{});
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
