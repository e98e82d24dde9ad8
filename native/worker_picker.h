// Which worker of the native transport takes the next request (io_loop.h), by the
// user-space dispatcher's policy: an idle worker first; a busy one takes more only while it
// answered something in the last busyWorkerGraceUs (its current call is short), its estimated
// backlog with the new request stays within workerBacklogUs, and it holds fewer than
// workerQueueDepth; a dead one nothing. Among those, the one holding fewest. A worker in a GC
// pause takes nothing while another qualifies; if it holds nothing it is the last resort. A
// slow-lane call (slowMethods, slow_methods.h) goes only to a worker among the first
// slowWorkers that holds nothing (the same GC-pause fallback), so the others stay free of them.
//
// The cost estimate is per worker, not per method: the time between its answers while it is
// busy (from the hand-off when it was idle), shared out over the answers one I/O round reads
// together, smoothed as the user-space cost model smooths per method.
#pragma once

#include <cstdint>
#include <vector>

namespace kmux {

/** The queues a frame waits in for a worker: slow-lane calls apart, so none holds up a fast one. */
enum Lane : uint8_t { kAnyLane, kSlowLane, kLanes };

class WorkerPicker {
 public:
  WorkerPicker(uint32_t workers, uint32_t slow_workers, uint32_t queue_depth, uint64_t grace_ns, uint64_t backlog_ns,
               const int32_t* gc_pauses)
      : workers_(workers),
        slow_workers_(slow_workers < workers ? slow_workers : workers),
        queue_depth_(queue_depth),
        grace_ns_(grace_ns),
        backlog_ns_(backlog_ns),
        gc_pauses_(gc_pauses) {}

  /** The slot to send a request of `lane` to now, or -1 when a worker must be waited for. */
  int Pick(uint64_t now_ns, Lane lane) const;
  /** A request went to `slot`. */
  void Sent(uint32_t slot, uint64_t now_ns);
  /** `slot` answered a request; `now_ns` is the same for every answer one I/O round reads. */
  void Answered(uint32_t slot, uint64_t now_ns);
  /** `count` requests `slot` held will never be answered (their connection is gone). */
  void Forget(uint32_t slot, uint32_t count) { workers_[slot].held -= count; }
  /** The worker in `slot` died, with all it held: nothing goes to it until SetAlive. */
  void Died(uint32_t slot);
  void SetAlive(uint32_t slot) { workers_[slot].alive = true; }
  uint32_t size() const { return static_cast<uint32_t>(workers_.size()); }

 private:
  struct Worker {
    uint32_t held = 0;         // requests sent and not answered, over all connections
    uint64_t progress_ns = 0;  // its last answer, or when it went from idle to busy
    bool alive = true;
    uint64_t cost_ns = kUnknownCostNs;  // estimated time one request keeps it busy
    uint64_t round_ns = 0;              // the busy time before the answers of its last round...
    uint32_t round_answers = 0;         // ...and how many answers that round read
  };

  /** What a request is assumed to cost before a worker has answered any (as for an unknown method). */
  static constexpr uint64_t kUnknownCostNs = 50'000;
  /** Each sample moves the estimate a fifth of the way (the user-space cost model's 0.2). */
  static constexpr int64_t kSmoothingDivisor = 5;

  std::vector<Worker> workers_;
  const uint32_t slow_workers_;  // the first slots, which alone run slow-lane calls
  const uint32_t queue_depth_;
  const uint64_t grace_ns_;
  const uint64_t backlog_ns_;
  // Written by the workers' threads (gc_watch.h); null when the server has none to share.
  const int32_t* const gc_pauses_;
};

}  // namespace kmux
