#include "memory_slot.hpp"

namespace simdattn::bench {

MemorySlot& large_data_slot() {
  static MemorySlot slot;
  return slot;
}

}  // namespace simdattn::bench
