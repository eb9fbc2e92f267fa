// throw_if_any_rank_failed and compare_across_ranks: two small allreduces and one broadcast.
#include "mpi/collective_errors.hpp"

#include <algorithm>
#include <stdexcept>

namespace simdattn::mpi::detail {

void throw_if_any_rank_failed(MPI_Comm comm, const char* function, const std::string& error) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // The lowest failing rank speaks for all: a fixed choice, so every rank throws the same text.
  const int mine = error.empty() ? size : rank;
  int first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  int length = rank == first ? static_cast<int>(error.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, comm);
  std::string text = rank == first ? error : std::string(static_cast<size_t>(length), ' ');
  MPI_Bcast(text.data(), length, MPI_CHAR, first, comm);
  throw std::invalid_argument(message(function, ": rank ", first, ": ", text));
}

std::string compare_across_ranks(MPI_Comm comm, const std::vector<SharedValue>& values) {
  // The count first: ranks with different counts must not enter allreduces of different lengths.
  const int64_t count = static_cast<int64_t>(values.size());
  int64_t counts[2] = {count, -count}, extremes_of_count[2];
  MPI_Allreduce(counts, extremes_of_count, 2, MPI_INT64_T, MPI_MIN, comm);
  if (extremes_of_count[0] != -extremes_of_count[1]) {
    return message("the ranks passed different numbers of options (", extremes_of_count[0], " to ",
                   -extremes_of_count[1], "): kv_lengths must have one entry per batch everywhere");
  }
  // Minimum and maximum in one MIN reduction: the maximum is minus the minimum of -value.
  std::vector<int64_t> local(2 * values.size()), extremes(2 * values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    local[2 * i] = values[i].value;
    local[2 * i + 1] = -values[i].value;
  }
  MPI_Allreduce(local.data(), extremes.data(), static_cast<int>(local.size()), MPI_INT64_T, MPI_MIN,
                comm);
  for (size_t i = 0; i < values.size(); ++i) {
    if (extremes[2 * i] != -extremes[2 * i + 1]) {
      return message(values[i].name, " must be the same on every rank, got values from ",
                     extremes[2 * i], " to ", -extremes[2 * i + 1]);
    }
  }
  return "";
}

}  // namespace simdattn::mpi::detail
