#include "sched_slice.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kmux {
namespace {

// struct sched_attr from linux/sched/types.h (glibc < 2.41 does not declare it).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

Check Failed(const std::string& call) { return Check{false, errno, call}; }

}  // namespace

Check SetThreadSlice(uint64_t runtime_us) {
  const std::string call = "sched_setattr(SCHED_OTHER, sched_runtime=" + std::to_string(runtime_us) + "us)";
  SchedAttr attr;
  std::memset(&attr, 0, sizeof attr);
  // Read the thread's own settings first so that only the slice changes.
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return Failed("sched_getattr");
  if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) {
    errno = EPERM;
    return Failed(call + " on a thread whose policy is not SCHED_OTHER");
  }
  attr.size = sizeof attr;
  attr.sched_runtime = runtime_us * 1000;
  if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return Failed(call);
  // Kernels before 6.12 accept sched_runtime for SCHED_OTHER and ignore it: read it back.
  SchedAttr check;
  std::memset(&check, 0, sizeof check);
  if (syscall(SYS_sched_getattr, 0, &check, sizeof check, 0) != 0) return Failed("sched_getattr");
  if (check.sched_runtime != attr.sched_runtime) {
    errno = EOPNOTSUPP;
    return Failed(call + " (the kernel kept its own slice)");
  }
  return Check{true, 0, call};
}

}  // namespace kmux
