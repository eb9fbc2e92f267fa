// The oracle of merge_attention_states: the formula of merge.hpp in double, every state read as
// the exact value it stores, the result rounded once.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "api/validate.hpp"
#include "reference/stored_values.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::reference {

void merge_attention_states(const AnyConstTensorView* outs, const ConstTensorView* lses, int64_t count,
                            AnyTensorView out, std::optional<TensorView> lse) {
  ::simdattn::detail::validate_merge_attention_states("simdattn::reference::merge_attention_states",
                                                      outs, lses, count, out, lse, 0);
  const double infinity = std::numeric_limits<double>::infinity();
  const auto& shape = out.shape;
  std::vector<double> weights(static_cast<size_t>(count));
  for (int64_t b = 0; b < shape[0]; ++b)
    for (int64_t h = 0; h < shape[1]; ++h)
      for (int64_t s = 0; s < shape[2]; ++s) {
        double largest = -infinity;
        bool not_a_number = false;
        for (int64_t i = 0; i < count; ++i) {
          const double value = *lses[i].row(b, h, s);
          not_a_number = not_a_number || std::isnan(value);
          largest = std::max(largest, value);
        }
        double total = 0.0, row_lse = 0.0;
        const bool nan_row = not_a_number || largest == infinity, empty = largest == -infinity;
        if (!nan_row && !empty) {
          for (int64_t i = 0; i < count; ++i) total += weights[i] = std::exp(*lses[i].row(b, h, s) - largest);
          row_lse = largest + std::log(total);
        }
        for (int64_t d = 0; d < shape[3]; ++d) {
          double value = nan_row ? std::nan("") : 0.0;
          if (!nan_row && !empty) {
            for (int64_t i = 0; i < count; ++i) {
              if (weights[i] > 0.0) value += weights[i] * detail::stored_value(outs[i].row(b, h, s), outs[i].dtype, d);
            }
            value /= total;
          }
          detail::store_rounded(out.row(b, h, s), out.dtype, d, value);
        }
        if (lse.has_value()) {
          *lse->row(b, h, s) = nan_row ? std::nanf("") : empty ? -std::numeric_limits<float>::infinity()
                                                              : static_cast<float>(row_lse);
        }
      }
}

}  // namespace simdattn::reference
