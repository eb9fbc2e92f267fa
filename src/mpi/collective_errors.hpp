// Errors decided together: a collective function must fail on every rank or on none, or the ranks
// that went on would wait forever for the ones that threw.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace simdattn::mpi::detail {

// Collective over comm. Every rank passes its own error ("" when it found none); when some rank
// found one, every rank throws std::invalid_argument with the message of the lowest such rank,
// prefixed by "function: rank r: ". Returns on every rank otherwise.
void throw_if_any_rank_failed(MPI_Comm comm, const char* function, const std::string& error);

// A value every rank must pass alike: its name (for the message) and the value as an integer.
struct SharedValue {
  const char* name;
  int64_t value;
};

// Collective over comm: "" when every rank passed the same values (the same count, in the same
// order), else an error naming the first value that differs, with its smallest and largest value
// across ranks. Every rank gets the same answer.
std::string compare_across_ranks(MPI_Comm comm, const std::vector<SharedValue>& values);

// "a b c" of streamable pieces: how the checks build their messages.
template <class... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}

}  // namespace simdattn::mpi::detail
