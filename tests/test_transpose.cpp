// The register transposes that pack Qᵀ and write Oᵀ out, against the definition, on every ISA the
// host runs. (The attention tests cover them too, but only through whole tiles.)
#include <vector>

#include "isa/registry.hpp"
#include "kernels/tile_kernels.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

class Transpose : public ::testing::TestWithParam<detail::Isa> {};

TEST_P(Transpose, RowsBecomeColumns) {
  const int width = detail::blocking_for(GetParam()).vector_floats;
  std::vector<float> square(static_cast<size_t>(width * width));
  // Distinct values, so that any two swapped elements show.
  for (int i = 0; i < width * width; ++i) square[static_cast<size_t>(i)] = static_cast<float>(i);
  detail::run_for_isa(GetParam(), detail::TransposeSquare{}, square.data());
  for (int row = 0; row < width; ++row) {
    for (int column = 0; column < width; ++column) {
      EXPECT_EQ(square[static_cast<size_t>(row * width + column)], static_cast<float>(column * width + row))
          << "row " << row << ", column " << column << " of a " << width << "×" << width << " square";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Transpose, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing
