#include "fd_poll.h"

#include <sys/socket.h>

#include <cerrno>

#include "errors.h"

namespace kmux {

Napi::Function FdPoll::Define(Napi::Env env) {
  return DefineClass(env, "FdPoll", {InstanceMethod("start", &FdPoll::Start), InstanceMethod("close", &FdPoll::Close)});
}

FdPoll::FdPoll(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<FdPoll>(info), env_(info.Env()), fd_(-1) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env_, "new FdPoll(fd, onEvent): expected a number and a function");
  }
  fd_ = info[0].As<Napi::Number>().Int32Value();
  on_event_ = Napi::Persistent(info[1].As<Napi::Function>());
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) throw SysError(env_, "napi_get_uv_event_loop", EINVAL);
  const int rc = poll_.Init(loop, fd_, this, &FdPoll::OnEvent);
  if (rc != 0) throw SysError(env_, "uv_poll_init", -rc);
}

Napi::Value FdPoll::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!poll_.Open()) throw SysError(env, "FdPoll.start (closed)", EBADF);
  const int events = info[0].As<Napi::Number>().Int32Value();
  if ((events & ~(UV_READABLE | UV_WRITABLE | UV_DISCONNECT)) != 0) {
    throw Napi::RangeError::New(env, "FdPoll.start: events must combine 1 (readable), 2 (writable), 4 (disconnect)");
  }
  const int rc = poll_.Start(events);  // 0 events stops the handle
  if (rc != 0) throw SysError(env, "uv_poll_start", -rc);
  SetActive(events != 0);
  return env.Undefined();
}

Napi::Value FdPoll::Close(const Napi::CallbackInfo& info) {
  poll_.Close();
  SetActive(false);
  // A strong reference to a closure that may reach this object's JS wrapper: a cycle GC
  // cannot collect (message_watcher.cc, Stop()). A callback running now keeps its own handle.
  on_event_.Reset();
  return info.Env().Undefined();
}

void FdPoll::SetActive(bool active) {
  if (active == active_) return;
  active_ = active;
  if (active) {
    Ref();
  } else {
    Unref();
  }
}

void FdPoll::OnEvent(void* self_ptr, int status, int events) {
  auto* self = static_cast<FdPoll*>(self_ptr);
  Napi::Env env = self->env_;
  if (status < 0) {
    // libuv has stopped the handle (POLLERR); the socket's pending error says why.
    self->SetActive(false);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    GuardLoopCallback([&] {
      Napi::HandleScope scope(env);
      CallFromLoop(env, self->on_event_, {SysError(env, "poll", err != 0 ? err : -status).Value(), Napi::Number::New(env, 0)});
    });
    return;
  }
  GuardLoopCallback([&] {
    Napi::HandleScope scope(env);
    CallFromLoop(env, self->on_event_, {env.Null(), Napi::Number::New(env, events)});
  });
}

}  // namespace kmux
