// A short EEVDF time slice for the calling thread: sched_setattr(2) with SCHED_OTHER and
// sched_runtime, which Linux >= 6.12 takes as the thread's requested slice (100 us at the
// least), unprivileged. A thread with a short slice preempts a running CPU hog on wakeup
// sooner, which is what a fast call's worker or the dispatching thread needs.
#pragma once

#include <cstdint>

#include "probe.h"

namespace kmux {

/** Asks for a `runtime_us` slice for the calling thread, keeping its policy and nice value. */
Check SetThreadSlice(uint64_t runtime_us);

}  // namespace kmux
