// The ISA registry and the SIMDATTN_ISA cap: what the registry derives (names, order, blocking),
// how a cap is parsed, and, in the isa.environment_* runs (tests/isa_environment.cmake, which set
// SIMDATTN_ISA for this binary), what a process with that cap does.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "isa/arm_features.hpp"
#include "isa/registry.hpp"
#include "simdattn/simdattn.h"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;
using detail::parse_isa_cap;

std::vector<Isa> registered_isas() {
  std::vector<Isa> isas;
  detail::for_each_isa([&](auto entry) {
    isas.push_back(entry.value);
    return false;
  });
  return isas;
}

#if defined(__x86_64__) || defined(_M_X64)
TEST(IsaRegistry, ListsEveryIsaOnceLowestFirst) {
  const std::vector<Isa> isas = registered_isas();
  ASSERT_EQ(isas.size(), 5u);
  for (size_t i = 0; i < isas.size(); ++i) {
    EXPECT_EQ(static_cast<int>(isas[i]), static_cast<int>(i)) << detail::isa_name(isas[i]);
  }
  EXPECT_STREQ(detail::isa_name(Isa::sse2), "sse2");
  EXPECT_STREQ(detail::isa_name(Isa::avx2), "avx2");
  EXPECT_STREQ(detail::isa_name(Isa::avx512), "avx512");
  EXPECT_STREQ(detail::isa_name(Isa::avx512bf16), "avx512bf16");
  EXPECT_STREQ(detail::isa_name(Isa::amx), "amx");
}

TEST(IsaRegistry, BlockingFollowsTheArchitecture) {
  // blocking_for (the plan, at run time) and blocking_of<Arch> (the kernels, at compile time)
  // read the same entry; a register holds Arch's width of floats.
  static_assert(detail::blocking_of<xsimd::avx512f>().vector_floats == 16);
  static_assert(detail::blocking_of<detail::avx512_bf16>().vector_floats == 16);
  static_assert(detail::blocking_of<detail::avx512_amx>().vector_floats == 16);
  static_assert(detail::blocking_of<xsimd::fma3<xsimd::avx2>>().vector_floats == 8);
  static_assert(detail::blocking_of<xsimd::sse2>().vector_floats == 4);
  for (Isa isa : registered_isas()) {
    EXPECT_EQ(detail::blocking_for(isa).vector_floats,
              isa >= Isa::avx512 ? 16 : isa == Isa::avx2 ? 8 : 4)
        << detail::isa_name(isa);
  }
}
#else  // AArch64: NEON alone, the baseline every AArch64 CPU runs
TEST(IsaRegistry, ListsEveryIsaOnceLowestFirst) {
  const std::vector<Isa> isas = registered_isas();
  ASSERT_EQ(isas.size(), 1u);
  EXPECT_EQ(static_cast<int>(isas[0]), 0);
  EXPECT_STREQ(detail::isa_name(Isa::neon), "neon");
  EXPECT_EQ(detail::supported_isas(), isas) << "every AArch64 CPU runs NEON";
}

TEST(IsaRegistry, BlockingFollowsTheArchitecture) {
  static_assert(detail::blocking_of<xsimd::neon64>().vector_floats == 4);
  EXPECT_EQ(detail::blocking_for(Isa::neon).vector_floats, 4);
}
#endif

TEST(IsaRegistry, SupportedIsasArePrefixOfTheRegistry) {
  const std::vector<Isa> supported = detail::supported_isas();
  const std::vector<Isa> all = registered_isas();
  ASSERT_FALSE(supported.empty());
  ASSERT_LE(supported.size(), all.size());
  for (size_t i = 0; i < supported.size(); ++i) EXPECT_EQ(supported[i], all[i]);
}

#if defined(__x86_64__) || defined(_M_X64)
TEST(IsaCap, AcceptsRegisteredNamesInAnyCaseAndBlanks) {
  EXPECT_EQ(parse_isa_cap("sse2"), Isa::sse2);
  EXPECT_EQ(parse_isa_cap("avx2"), Isa::avx2);
  EXPECT_EQ(parse_isa_cap("avx512"), Isa::avx512);
  EXPECT_EQ(parse_isa_cap(" AVX2 "), Isa::avx2);
  EXPECT_EQ(parse_isa_cap("Sse2"), Isa::sse2);
  EXPECT_EQ(parse_isa_cap("\tavx512\n"), Isa::avx512);
  EXPECT_EQ(parse_isa_cap("AVX512BF16"), Isa::avx512bf16);
  EXPECT_EQ(parse_isa_cap("amx"), Isa::amx);
}
#else
TEST(IsaCap, AcceptsRegisteredNamesInAnyCaseAndBlanks) {
  EXPECT_EQ(parse_isa_cap("neon"), Isa::neon);
  EXPECT_EQ(parse_isa_cap(" NEON "), Isa::neon);
  EXPECT_EQ(parse_isa_cap("\tNeon\n"), Isa::neon);
}
#endif

// The names this processor's registry accepts, as the parser's message lists them.
#if defined(__x86_64__) || defined(_M_X64)
constexpr const char* kAcceptedNames = "sse2, avx2, avx512, avx512bf16, amx";
#else
constexpr const char* kAcceptedNames = "neon";
#endif

// SVE and SVE2 are detected and reported, not dispatched to (isa/arm_features.hpp says why):
// the report is consistent, and printed so that a CI log says what the (emulated) CPU has.
TEST(IsaRegistry, ReportsArmVectorExtensions) {
  const detail::ArmVectorExtensions found = detail::arm_vector_extensions();
  std::printf("kernels: %s; SVE: %s; SVE2: %s\n", active_isa(), found.sve ? "yes" : "no",
              found.sve2 ? "yes" : "no");
  if (found.sve) std::printf("SVE vector length: %d bits (no SVE kernels)\n", found.sve_vector_bits);
  EXPECT_TRUE(!found.sve2 || found.sve) << "SVE2 without SVE";
  if (found.sve) {
    // 128 to 2048 bits in steps of 128 (the architecture's rule).
    EXPECT_EQ(found.sve_vector_bits % 128, 0) << found.sve_vector_bits;
    EXPECT_GE(found.sve_vector_bits, 128);
    EXPECT_LE(found.sve_vector_bits, 2048);
  } else {
    EXPECT_EQ(found.sve_vector_bits, 0);
  }
#if !defined(__aarch64__)
  EXPECT_FALSE(found.sve) << "SVE reported on a processor that is not AArch64";
#endif
}

// What a process runs without SIMDATTN_ISA: the best ISA the CPU runs, except avx512bf16 where
// VDPBF16PS is slower than the FMAs it replaces (every CPU but AMD's; IsaTraits<avx512bf16>).
Isa expected_default_isa() {
  Isa expected = detail::supported_isas().front();
  for (Isa isa : detail::supported_isas()) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == Isa::avx512bf16 && !detail::cpu_is_amd()) continue;
#endif
    expected = isa;
  }
  return expected;
}

TEST(IsaDefault, IsTheBestTheCpuRunsFastest) {
  if (std::getenv("SIMDATTN_ISA") != nullptr) GTEST_SKIP() << "SIMDATTN_ISA is set: IsaEnvironment checks it";
  EXPECT_STREQ(active_isa(), detail::isa_name(expected_default_isa()));
}

TEST(IsaCap, UnsetOrBlankLeavesTheDefault) {
  EXPECT_EQ(parse_isa_cap(nullptr), std::nullopt);
  EXPECT_EQ(parse_isa_cap(""), std::nullopt);
  EXPECT_EQ(parse_isa_cap("  \t "), std::nullopt);
}

TEST(IsaCap, RefusesAnythingElseNamingTheVariableTheValueAndTheChoices) {
  for (const char* value : {"garbage", "sse4", "avx", "avx2x", "avx 2", "avx512f", "fma3+avx2", "-",
                            "neon64", "sve", "sve2"}) {
    try {
      (void)parse_isa_cap(value);
      ADD_FAILURE() << "'" << value << "' was accepted";
    } catch (const std::invalid_argument& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("SIMDATTN_ISA"), std::string::npos) << message;
      EXPECT_NE(message.find("'" + std::string(value) + "'"), std::string::npos) << message;
      EXPECT_NE(message.find(kAcceptedNames), std::string::npos) << message;
    }
  }
}

// Run by tests/isa_environment.cmake with SIMDATTN_ISA set (skipped without it): the first call
// with an invalid value fails, in C++ and in C, with the parser's message, and so does every later
// call; a valid value caps active_isa().
TEST(IsaEnvironment, CallsFollowTheCap) {
  const char* value = std::getenv("SIMDATTN_ISA");
  if (value == nullptr) GTEST_SKIP() << "run by the isa.environment_* tests with SIMDATTN_ISA set";
  std::string expected_error;
  std::optional<Isa> cap;
  try {
    cap = parse_isa_cap(value);
  } catch (const std::invalid_argument& error) {
    expected_error = error.what();
  }
  float q[4] = {1, 0, 0, 1}, k[4] = {1, 0, 0, 1}, v[4] = {1, 2, 3, 4}, out[4] = {};
  const auto view = [](float* data) {
    return TensorView{data, {1, 1, 2, 2}, {4, 4, 2, 1}};
  };
  simdattn_tensor tensors[4];
  float* data[4] = {q, k, v, out};
  for (int i = 0; i < 4; ++i) {
    tensors[i] = simdattn_tensor{data[i], SIMDATTN_F32, {1, 1, 2, 2}, {4, 4, 2, 1}};
  }
  if (!expected_error.empty()) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        attention(view(q), view(k), view(v), view(out));
        ADD_FAILURE() << "attention() ran with SIMDATTN_ISA='" << value << "'";
      } catch (const std::invalid_argument& error) {
        EXPECT_EQ(std::string(error.what()), expected_error);
      }
      EXPECT_THROW((void)active_isa(), std::invalid_argument);
      EXPECT_EQ(simdattn_attention(&tensors[0], &tensors[1], &tensors[2], &tensors[3], nullptr),
                SIMDATTN_ERR_INVALID_ARGUMENT);
      EXPECT_EQ(std::string(simdattn_last_error()), expected_error);
      EXPECT_STREQ(simdattn_active_isa(), "unknown");
    }
    return;
  }
  // A name the CPU runs selects that ISA, even one it would not choose itself; one above what it
  // runs leaves its default.
  const Isa best = detail::supported_isas().back();
  const Isa expected = cap && *cap <= best ? *cap : expected_default_isa();
  EXPECT_STREQ(active_isa(), detail::isa_name(expected)) << "SIMDATTN_ISA='" << value << "'";
  EXPECT_STREQ(simdattn_active_isa(), detail::isa_name(expected));
  EXPECT_EQ(simdattn_attention(&tensors[0], &tensors[1], &tensors[2], &tensors[3], nullptr),
            SIMDATTN_OK)
      << simdattn_last_error();
}

}  // namespace
}  // namespace simdattn::testing
