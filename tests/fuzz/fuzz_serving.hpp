// The serving entries under the fuzzer: simdattn_attention_varlen (packed batches) and
// simdattn_attention_paged (a paged K/V cache), decoded as tests/fuzz/README.md says and held to
// the promises listed at the top of fuzz_c_abi.cpp.
#pragma once
#include "byte_reader.hpp"
#include "fuzz_call.hpp"

namespace simdattn::fuzz {

int fuzz_attention_varlen(ByteReader& in, const Sizes& s);
int fuzz_attention_paged(ByteReader& in, const Sizes& s);

}  // namespace simdattn::fuzz
