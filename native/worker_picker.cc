#include "worker_picker.h"

namespace kmux {

int WorkerPicker::Pick(uint64_t now_ns, Lane lane) const {
  const bool slow = lane == kSlowLane;
  const uint32_t size = slow ? slow_workers_ : static_cast<uint32_t>(workers_.size());
  int best = -1;
  int pausing = -1;
  for (uint32_t slot = 0; slot < size; ++slot) {
    const Worker& worker = workers_[slot];
    if (!worker.alive || worker.held >= queue_depth_) continue;
    if (gc_pauses_ != nullptr && __atomic_load_n(gc_pauses_ + slot, __ATOMIC_ACQUIRE) == 1) {
      if (worker.held == 0 && pausing < 0) pausing = static_cast<int>(slot);
      continue;
    }
    if (worker.held > 0 && (slow || now_ns - worker.progress_ns > grace_ns_ || (worker.held + 1) * worker.cost_ns > backlog_ns_)) continue;
    if (best < 0 || worker.held < workers_[best].held) best = static_cast<int>(slot);
  }
  return best >= 0 ? best : pausing;
}

void WorkerPicker::Sent(uint32_t slot, uint64_t now_ns) {
  Worker& worker = workers_[slot];
  if (worker.held++ == 0) worker.progress_ns = now_ns;
}

void WorkerPicker::Answered(uint32_t slot, uint64_t now_ns) {
  Worker& worker = workers_[slot];
  worker.held--;
  if (worker.round_answers > 0 && now_ns == worker.progress_ns) {
    worker.round_answers++;  // read in the same round: it shares the round's busy time
    return;
  }
  // A new round: the last one's busy time per answer is a sample of what a request costs.
  if (worker.round_answers > 0) {
    const int64_t sample = static_cast<int64_t>(worker.round_ns / worker.round_answers);
    const int64_t cost = static_cast<int64_t>(worker.cost_ns);
    worker.cost_ns = static_cast<uint64_t>(cost + (sample - cost) / kSmoothingDivisor);
  }
  worker.round_ns = now_ns - worker.progress_ns;
  worker.round_answers = 1;
  worker.progress_ns = now_ns;
}

void WorkerPicker::Died(uint32_t slot) {
  workers_[slot].alive = false;
  workers_[slot].held = 0;
}

}  // namespace kmux
