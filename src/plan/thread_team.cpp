// How many threads a call runs with: what it asks for, within what the process may use and what
// is safe after fork().
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include <omp.h>

#include "plan/attention_plan.hpp"

namespace simdattn::detail {
namespace {

// fork() copies only the calling thread, but libgomp's thread pool keeps its record of the
// parent's idle workers: the child's next team of two or more waits for threads that do not
// exist, forever. Whether the parent had such a pool cannot be asked of OpenMP; a parent that ran
// more than one thread may have one (the library's own teams, or the caller's OpenMP code), so
// its child, and every process forked from that child, runs each call on the calling thread.
std::atomic<bool> parent_had_threads{false};
std::atomic<bool> forked_from_threaded_parent{false};

// The calling process's thread count from /proc/self/stat (field 20), or 0 when it cannot be
// read. No allocation: it runs inside fork().
long threads_in_this_process() {
  const int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (file < 0) return 0;
  char text[1024];
  const ssize_t length = read(file, text, sizeof(text) - 1);
  close(file);
  if (length <= 0) return 0;
  text[length] = '\0';
  // Fields after the command name, which is in parentheses and may hold spaces or ')'.
  const char* at = nullptr;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c == ')') at = c;
  }
  if (at == nullptr) return 0;
  // ") state ppid ...": field 3 (state) follows; num_threads is field 20, 17 fields later.
  int field = 2;
  for (const char* c = at + 1; *c != '\0'; ++c) {
    if (*c == ' ') ++field;
    if (field == 20) return std::strtol(c + 1, nullptr, 10);
  }
  return 0;
}

void before_fork() {
  const long threads = threads_in_this_process();
  parent_had_threads.store(threads != 1, std::memory_order_relaxed);  // unknown (0) counts as many
}

void in_forked_child() {
  if (parent_had_threads.load(std::memory_order_relaxed)) {
    forked_from_threaded_parent.store(true, std::memory_order_relaxed);
  }
}

// Registered when the library is loaded, so that a fork before its first call is seen too.
// glibc unregisters the handlers when a shared library holding them is unloaded.
const bool fork_handlers_registered = pthread_atfork(before_fork, nullptr, in_forked_child) == 0;

}  // namespace

int threads_for_call(int requested, int64_t work_items) {
  if (omp_in_parallel()) return 1;
  // Without the handlers a fork cannot be seen: stay on the calling thread rather than risk it.
  if (!fork_handlers_registered || forked_from_threaded_parent.load(std::memory_order_relaxed)) return 1;
  const int64_t threads = requested > 0 ? requested : omp_get_max_threads();
  // More threads than logical CPUs only contend for them, and a request of thousands would make
  // libgomp start thousands of OS threads, exiting the process when it cannot. omp_get_num_procs()
  // counts the CPUs of the calling thread's affinity mask (taskset, cgroup cpusets).
  const int64_t processors = std::max(1, omp_get_num_procs());
  return static_cast<int>(std::max<int64_t>(1, std::min({threads, processors, work_items})));
}

}  // namespace simdattn::detail
