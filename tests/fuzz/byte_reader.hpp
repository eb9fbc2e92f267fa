// Reads the fuzzer's input front to back, one decision per byte, so that a hand-made seed is a
// readable list of choices (tests/fuzz/README.md lists the order). Past the end every
// read gives 0: a short input is still a complete call, with the first choice everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace simdattn::fuzz {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t byte() { return position_ < size_ ? data_[position_++] : 0; }

  // A value in [0, count): one byte modulo count (count <= 256).
  int choice(int count) { return byte() % count; }

  // Eight bytes, little-endian, as a signed integer: any int64 the fuzzer likes.
  int64_t raw_int64() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= uint64_t{byte()} << (8 * i);
    int64_t value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
};

}  // namespace simdattn::fuzz
