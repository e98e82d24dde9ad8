// Readiness of one fd, reported to JS on the loop of the Node environment that
// created the poll (main thread or worker). It never reads or writes: the JS
// side does that with the synchronous calls of ktls.h, so it stays in control
// of how much is consumed from the kernel (the kTLS handoff must not read one
// byte past the handshake).
//
//   new FdPoll(fd, onEvent(error | null, events))
//   start(events)   events: 1 readable, 2 writable, 4 disconnect; 0 stops
//   close()         idempotent; the fd is not closed
//
// uv_poll is level-triggered: an fd that stays readable is reported again on
// every loop turn until it is drained or the poll is stopped. A poll error
// (POLLERR) stops the poll and reports SO_ERROR as a SysError ("poll").
#pragma once

#include <napi.h>

#include "uv_poll_handle.h"

namespace kmux {

class FdPoll : public Napi::ObjectWrap<FdPoll> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit FdPoll(const Napi::CallbackInfo& info);

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnEvent(void* self, int status, int events);
  /** Keeps the JS object alive exactly while the poll is armed. */
  void SetActive(bool active);

  Napi::Env env_;
  int fd_;
  UvPollHandle poll_;
  Napi::FunctionReference on_event_;
  bool active_ = false;
};

}  // namespace kmux
