// The single place where a benchmark keeps its large data between the calls Google Benchmark
// makes to the same benchmark function (one per iteration-count guess).
#pragma once

#include <memory>
#include <string>
#include <utility>

namespace simdattn::bench {

// Holds at most one large object at a time, under a key. Asking with the key it holds returns
// that object; asking with another key frees the held one *before* making the new one, so the
// process never holds two shapes' inputs (the long shape and the decode KV pools are GiBs each).
// A reference from an earlier call is dangling once a call with another key has been made.
// Benchmarks run one at a time on the main thread, so no locking is needed.
class MemorySlot {
 public:
  // The object held under `key`, made by make() (returning std::unique_ptr<T>) when the slot
  // holds something else or nothing.
  template <class T, class Make>
  T& get_or_make(const std::string& key, Make&& make) {
    if (held_ && key_ == key) return *static_cast<T*>(held_.get());
    held_.reset();
    key_.clear();
    std::unique_ptr<T> made = std::forward<Make>(make)();
    held_ = std::shared_ptr<void>(std::move(made));
    key_ = key;
    return *static_cast<T*>(held_.get());
  }

 private:
  // shared_ptr<void> keeps the right deleter for whatever type it was made from.
  std::shared_ptr<void> held_;
  std::string key_;
};

// The slot every benchmark of this binary shares.
MemorySlot& large_data_slot();

}  // namespace simdattn::bench
