// Which worker of the native transport takes the next request (io_loop.h), by the
// user-space dispatcher's policy: an idle worker first; a busy one takes more only while it
// answered something in the last busyWorkerGraceUs (its current call is short) and holds
// fewer than workerQueueDepth; a dead one nothing. Among those, the one holding fewest.
#pragma once

#include <cstdint>
#include <vector>

namespace kmux {

class WorkerPicker {
 public:
  WorkerPicker(uint32_t workers, uint32_t queue_depth, uint64_t grace_ns)
      : workers_(workers), queue_depth_(queue_depth), grace_ns_(grace_ns) {}

  /** The slot to send a request to now, or -1 when every worker must be waited for. */
  int Pick(uint64_t now_ns) const;
  /** A request went to `slot`. */
  void Sent(uint32_t slot, uint64_t now_ns);
  /** `slot` answered a request. */
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
  };

  std::vector<Worker> workers_;
  const uint32_t queue_depth_;
  const uint64_t grace_ns_;
};

}  // namespace kmux
