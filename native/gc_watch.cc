#include "gc_watch.h"

namespace kmux {

namespace {

// The stop-the-world collections. Incremental marking also calls the callbacks, at its start
// and its end, but JS runs in between; weak callbacks run after a pause, in a task of their own.
const auto kPauses =
    static_cast<v8::GCType>(v8::kGCTypeAll & ~(v8::kGCTypeIncrementalMarking | v8::kGCTypeProcessWeakCallbacks));

}  // namespace

GcWatch::GcWatch(Napi::Int32Array cells, uint32_t index)
    : isolate_(v8::Isolate::GetCurrent()), cells_(Napi::Persistent(cells)), cell_(cells.Data() + index) {
  isolate_->AddGCPrologueCallback(Started, this, kPauses);
  isolate_->AddGCEpilogueCallback(Ended, this, kPauses);
}

GcWatch::~GcWatch() {
  isolate_->RemoveGCPrologueCallback(Started, this);
  isolate_->RemoveGCEpilogueCallback(Ended, this);
  __atomic_store_n(cell_, 0, __ATOMIC_RELEASE);
}

// V8 calls these on the isolate's own thread at the start and end of each pause, never
// nested (a collection does not start inside another's callbacks).
void GcWatch::Started(v8::Isolate*, v8::GCType, v8::GCCallbackFlags, void* data) {
  __atomic_store_n(static_cast<GcWatch*>(data)->cell_, 1, __ATOMIC_RELEASE);
}

void GcWatch::Ended(v8::Isolate*, v8::GCType, v8::GCCallbackFlags, void* data) {
  __atomic_store_n(static_cast<GcWatch*>(data)->cell_, 0, __ATOMIC_RELEASE);
}

}  // namespace kmux
