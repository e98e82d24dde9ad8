#include "worker_picker.h"

namespace kmux {

int WorkerPicker::Pick(uint64_t now_ns) const {
  int best = -1;
  for (uint32_t slot = 0; slot < workers_.size(); ++slot) {
    const Worker& worker = workers_[slot];
    if (!worker.alive || worker.held >= queue_depth_) continue;
    if (worker.held > 0 && now_ns - worker.progress_ns > grace_ns_) continue;
    if (best < 0 || worker.held < workers_[best].held) best = static_cast<int>(slot);
  }
  return best;
}

void WorkerPicker::Sent(uint32_t slot, uint64_t now_ns) {
  Worker& worker = workers_[slot];
  if (worker.held++ == 0) worker.progress_ns = now_ns;
}

void WorkerPicker::Answered(uint32_t slot, uint64_t now_ns) {
  Worker& worker = workers_[slot];
  worker.held--;
  worker.progress_ns = now_ns;
}

void WorkerPicker::Died(uint32_t slot) {
  workers_[slot].alive = false;
  workers_[slot].held = 0;
}

}  // namespace kmux
