// Consumer check from C++: seed 001's single query through the installed simdattn::attention.
// Prints "cpp_consumer ok" and exits 0 when the result matches the document's numbers.
#include <cmath>
#include <cstdio>
#include <vector>

#include <simdattn/simdattn.hpp>

int main() {
  const std::vector<float> q{0.5f, 0.5f}, k{0.1f, 0.2f, 0.2f, 0.3f}, v{0.6f, 0.8f, 0.7f, 0.9f};
  std::vector<float> out(2);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  simdattn::attention(simdattn::bhsd_view(q.data(), 1, 1, 1, 2), simdattn::bhsd_view(k.data(), 1, 1, 2, 2),
                      simdattn::bhsd_view(v.data(), 1, 1, 2, 2),
                      simdattn::bhsd_view(out.data(), 1, 1, 1, 2), options);
  std::printf("simdattn %s (%s): [%.4f, %.4f]\n", simdattn::version(), simdattn::active_isa(),
              out[0], out[1]);
  // The document's double result; float keeps about 7 significant digits.
  const bool ok = std::fabs(out[0] - 0.6524979187478941) < 1e-6 &&
                  std::fabs(out[1] - 0.852497918747894) < 1e-6;
  std::printf("cpp_consumer %s\n", ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
