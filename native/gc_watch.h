// Publishes whether the calling thread's V8 heap is in a stop-the-world GC pause, in memory
// another thread reads: a worker idle between calls can still be unable to start one for the
// few ms of a scavenge, and the dispatcher then prefers a worker that can.
#pragma once

#include <napi.h>
#include <v8.h>

#include <cstdint>

namespace kmux {

class GcWatch {
 public:
  /** Sets cells[index] to 1 for each GC pause of this thread's isolate and back to 0 after it. */
  GcWatch(Napi::Int32Array cells, uint32_t index);
  ~GcWatch();
  GcWatch(const GcWatch&) = delete;
  GcWatch& operator=(const GcWatch&) = delete;

 private:
  static void Started(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags flags, void* data);
  static void Ended(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags flags, void* data);

  v8::Isolate* const isolate_;
  // Keeps the shared memory alive for as long as the callbacks may write to it.
  Napi::Reference<Napi::Int32Array> cells_;
  int32_t* const cell_;
};

}  // namespace kmux
