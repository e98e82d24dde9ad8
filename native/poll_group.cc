#include "poll_group.h"

#include <sys/epoll.h>

#include <cerrno>

#include "errors.h"

namespace kmux {
namespace {

/** Events taken per wakeup; the rest stay ready (level-triggered) for the next loop turn. */
constexpr int kEventsPerWakeup = 64;

}  // namespace

Napi::Function PollGroup::Define(Napi::Env env) {
  return DefineClass(env, "PollGroup",
                     {InstanceMethod("pause", &PollGroup::Pause), InstanceMethod("resume", &PollGroup::Resume),
                      InstanceMethod("close", &PollGroup::Close)});
}

PollGroup::PollGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PollGroup>(info), epoll_(epoll_create1(EPOLL_CLOEXEC)) {
  Napi::Env env = info.Env();
  if (!epoll_.Valid()) throw SysError(env, "epoll_create1", errno);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw SysError(env, "napi_get_uv_event_loop", EINVAL);
  int rc = poll_.Init(loop, epoll_.Get(), this, &PollGroup::OnEvent);
  if (rc == 0) rc = poll_.Start(UV_READABLE);
  if (rc != 0) throw SysError(env, "uv_poll_start", -rc);
  armed_ = true;
  // As a watcher's own poll does: the thread stays alive while a member may be read.
  poll_.KeepsLoopAlive(false);
  // The epoll fd must not outlive a worker thread that exits without close().
  napi_add_env_cleanup_hook(env, &PollGroup::ShutAtExit, this);
}

PollGroup::~PollGroup() {
  napi_remove_env_cleanup_hook(Env(), &PollGroup::ShutAtExit, this);
  Shut();
}

void PollGroup::ShutAtExit(void* self) { static_cast<PollGroup*>(self)->Shut(); }

uint64_t PollGroup::Add(int fd, void* owner, Callback callback) {
  if (!epoll_.Valid()) {
    errno = EBADF;
    return 0;
  }
  const uint64_t id = next_id_++;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.u64 = id;
  if (epoll_ctl(epoll_.Get(), EPOLL_CTL_ADD, fd, &event) != 0) return 0;
  members_.emplace(id, Member{owner, callback});
  if (members_.size() == 1) poll_.KeepsLoopAlive(true);
  return id;
}

void PollGroup::Remove(uint64_t id, int fd) {
  if (members_.erase(id) == 0 || !epoll_.Valid()) return;
  if (members_.empty()) poll_.KeepsLoopAlive(false);
  // The fd is still open (its owner closes it after the watcher): its epoll entry must go now.
  epoll_event unused{};
  epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, fd, &unused);
}

Napi::Value PollGroup::Pause(const Napi::CallbackInfo& info) {
  paused_ = true;
  return info.Env().Undefined();
}

Napi::Value PollGroup::Resume(const Napi::CallbackInfo& info) {
  paused_ = false;
  if (!armed_ && epoll_.Valid()) {
    const int rc = poll_.Start(UV_READABLE);
    if (rc != 0) throw SysError(info.Env(), "uv_poll_start", -rc);
    armed_ = true;
  }
  return info.Env().Undefined();
}

Napi::Value PollGroup::Close(const Napi::CallbackInfo& info) {
  Shut();
  return info.Env().Undefined();
}

void PollGroup::Shut() {
  poll_.Close();
  epoll_.Reset(-1);
  members_.clear();
  armed_ = false;
}

void PollGroup::OnEvent(void* self_ptr, int status, int /*events*/) {
  auto* self = static_cast<PollGroup*>(self_ptr);
  if (status < 0 || self->paused_) {
    // Paused: something arrived, so stop polling the set until resume() (a level-triggered
    // set would otherwise wake the loop on every turn). An error on the epoll fd itself
    // cannot happen while it is open; stopping is the safe answer to one anyway.
    self->poll_.Start(0);
    self->armed_ = false;
    return;
  }
  epoll_event events[kEventsPerWakeup];
  const int n = epoll_wait(self->epoll_.Get(), events, kEventsPerWakeup, 0);
  for (int i = 0; i < n && !self->paused_; i++) {
    // A member's callback may remove members or close the group: look each one up afresh.
    const auto member = self->members_.find(events[i].data.u64);
    if (member == self->members_.end()) continue;
    const uint32_t ev = events[i].events;
    // As libuv reports a uv_poll: POLLERR as UV_EBADF with no events, the rest as readable.
    if ((ev & EPOLLERR) != 0) {
      member->second.callback(member->second.owner, UV_EBADF, 0);
    } else {
      member->second.callback(member->second.owner, 0, UV_READABLE | ((ev & (EPOLLRDHUP | EPOLLHUP)) != 0 ? UV_DISCONNECT : 0));
    }
  }
}

}  // namespace kmux
