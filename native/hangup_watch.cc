#include "hangup_watch.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "sys_failure.h"

namespace kmux {
namespace {

/**
 * Why a TCP socket that polled POLLERR has an empty SO_ERROR by now: something took sk_err
 * in between. KCM's own transmit does, when a reply send meets the EPIPE that KCM sets at
 * the peer's FIN. TCP's state still tells a FIN (CLOSE_WAIT) from a reset (CLOSE); 0 if neither.
 */
int ErrorFromTcpState(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  if (info.tcpi_state == TCP_CLOSE_WAIT) return EPIPE;
  if (info.tcpi_state == TCP_CLOSE) return ECONNRESET;
  return 0;
}

}  // namespace

void HangupWatch::Start(Napi::Env env, int fd, Napi::Function callback) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw SysFailure{"napi_get_uv_event_loop", EINVAL};
  int rc = poll_.Init(loop, fd, this, &HangupWatch::OnEvent);
  // UV_DISCONNECT is EPOLLRDHUP (peer FIN); EPOLLERR and EPOLLHUP are always reported.
  if (rc == 0) rc = poll_.Start(UV_DISCONNECT);
  if (rc != 0) {
    poll_.Close();
    throw SysFailure{"uv_poll_start(tcp socket)", -rc};
  }
  env_ = env;
  fd_ = fd;
  callback_ = Napi::Persistent(callback);
}

void HangupWatch::Stop() {
  poll_.Close();
  callback_.Reset();
}

void HangupWatch::OnEvent(void* self_ptr, int status, int /*events*/) {
  auto* self = static_cast<HangupWatch*>(self_ptr);
  // sk_err says why (and reading it clears it): EPIPE is what KCM reports for a
  // peer FIN, ECONNRESET an RST, EMSGSIZE or EPROTO a parser abort.
  int err = 0;
  socklen_t len = sizeof err;
  std::string call = "getsockopt(SO_ERROR)";
  if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  } else if (err == 0 && status < 0) {
    err = ErrorFromTcpState(self->fd_);
    call = "poll (SO_ERROR already taken), TCP state";
    if (err == 0) {
      err = -status;  // libuv's EBADF, its word for any POLLERR
      call = "uv_poll";
    }
  }
  // Stop before calling out: the callback may close the owner, and this object with it.
  Napi::FunctionReference callback = std::move(self->callback_);
  self->poll_.Close();
  Napi::Env env = self->env_;
  GuardLoopCallback([&] {
    Napi::HandleScope scope(env);
    Napi::Object report;
    if (err != 0) {
      report = SysError(env, "tcp socket: " + call, err).Value();
    } else {
      report = Napi::Error::New(env, "tcp socket: the peer closed the connection").Value();
      report.Set("code", "EOF");
      report.Set("errno", 0);
      report.Set("syscall", "poll");
    }
    CallFromLoop(env, callback, {report});
  });
}

}  // namespace kmux
