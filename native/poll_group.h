// One epoll set for the message sockets a worker thread reads (its KCM sockets, or its
// sockmap targets), polled as ONE fd on the thread's libuv loop. The worker's budget
// (kernel-budget.ts) stops and resumes reading on all its connections at once, often
// (at every fill and every 1 ms turn): with a uv_poll per socket each flip cost libuv an
// epoll_ctl DEL and ADD per socket. Here a flip is a flag; only a message arriving while
// paused stops the set's own poll (one DEL), and the resume re-arms it (DEL + ADD).
//
//   new PollGroup()     on the thread whose loop reads
//   pause() / resume()  idempotent; level-triggered, so what came meanwhile is read next turn
//   close()             idempotent, also at the thread's exit; members read nothing more
//
// Members join from C++ (MessageWatcher, with the group as an option): Add() once per
// socket, Remove() when it stops or reads on its own.
#pragma once

#include <napi.h>

#include <cstdint>
#include <unordered_map>

#include "unique_fd.h"
#include "uv_poll_handle.h"

namespace kmux {

class PollGroup : public Napi::ObjectWrap<PollGroup> {
 public:
  using Callback = UvPollHandle::Callback;

  static Napi::Function Define(Napi::Env env);
  explicit PollGroup(const Napi::CallbackInfo& info);
  ~PollGroup() override;

  /** Watches fd for reading on behalf of owner; callback gets (status, events) as a uv_poll's would. A member id, or 0 and errno. */
  uint64_t Add(int fd, void* owner, Callback callback);
  void Remove(uint64_t id, int fd);

 private:
  struct Member {
    void* owner;
    Callback callback;
  };

  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnEvent(void* self, int status, int events);
  static void ShutAtExit(void* self);
  void Shut();

  UniqueFd epoll_;
  UvPollHandle poll_;
  bool paused_ = false;
  bool armed_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Member> members_;
};

}  // namespace kmux
