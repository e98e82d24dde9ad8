#include "kcm_mux.h"

#include <fcntl.h>
#include <linux/kcm.h>
#include <linux/sock_diag.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "bpf_programs.h"
#include "errors.h"
#include "frame_tally.h"
#include "socket_opts.h"
#include "sys_failure.h"

namespace kmux {

Napi::Function KcmMux::Define(Napi::Env env) {
  return DefineClass(env, "KcmMux", {InstanceMethod("fds", &KcmMux::Fds), InstanceMethod("close", &KcmMux::Close),
                                       InstanceMethod("framed", &KcmMux::Framed), InstanceMethod("unsent", &KcmMux::Unsent),
                                       InstanceMethod("restartTransmit", &KcmMux::RestartTransmit),
                                       InstanceMethod("parserError", &KcmMux::ParserError)});
}

KcmMux::KcmMux(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KcmMux>(info) {
  Napi::Env env = info.Env();
  const int tcp_fd = info[0].As<Napi::Number>().Int32Value();
  const uint32_t max_frame = info[1].As<Napi::Number>().Uint32Value();
  const uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  try {
    KcmParser parser = LoadKcmParser(max_frame);
    parser_state_ = std::move(parser.state);
    program_ = std::move(parser.program);
    tcp_ = DupFd(tcp_fd);
    // strparser refuses (EMSGSIZE) a message above the TCP socket's sk_rcvbuf and
    // stalls near it; twice the largest frame leaves TCP room for the next one.
    EnsureRcvbuf(tcp_.Get(), 2 * (static_cast<uint64_t>(max_frame) + 4) + 65536);
    // SEQPACKET, not DGRAM: a non-blocking send that fills the socket buffer
    // keeps what it copied and returns the count (the rest continues the same
    // message; MSG_EOR ends it), where DGRAM drops the partial message, so a
    // message above the send buffer could never go out. Reads must take a
    // message whole on either type (message_watcher.h says why).
    UniqueFd kcm(socket(AF_KCM, SOCK_SEQPACKET | SOCK_CLOEXEC, KCMPROTO_CONNECTED));
    if (!kcm.Valid()) ThrowErrno("socket(AF_KCM, SOCK_SEQPACKET, KCMPROTO_CONNECTED)");
    sockets_.push_back(std::move(kcm));
    Attach();
    while (sockets_.size() < count) {
      kcm_clone clone{};
      if (ioctl(sockets_[0].Get(), SIOCKCMCLONE, &clone) != 0) ThrowErrno("ioctl(SIOCKCMCLONE)");
      sockets_.emplace_back(clone.fd);
      // The clone's fd comes without O_CLOEXEC.
      if (fcntl(clone.fd, F_SETFD, FD_CLOEXEC) != 0) ThrowErrno("fcntl(F_SETFD, FD_CLOEXEC)");
    }
    hangup_.Start(env, tcp_.Get(), info[3].As<Napi::Function>());
  } catch (const SysFailure& failure) {
    Release();
    throw SysError(env, failure);
  }
}

KcmMux::~KcmMux() { Release(); }

Napi::Value KcmMux::Fds(const Napi::CallbackInfo& info) {
  Napi::Array fds = Napi::Array::New(info.Env(), sockets_.size());
  for (uint32_t i = 0; i < sockets_.size(); ++i) fds.Set(i, sockets_[i].Get());
  return fds;
}

Napi::Value KcmMux::Framed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!tcp_.Valid()) throw SysError(env, "framed (mux closed)", EBADF);
  FrameTally tally;
  try {
    // Received first: every byte counted there is parsed by the time the state says so.
    tally.received = TcpDataReceived(tcp_.Get());
    const uint32_t key = 0;
    KcmParserState state{}, scratch{};
    ReadStable(parser_state_.Get(), &key, &state, &scratch, sizeof state);
    tally.refused = state.refused_length;
    if (state.valid != 0) {
      tally.parsed = state.parsed;
      tally.end = state.next_seq - state.start_seq;
    }
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
  return ToJs(env, tally);
}

Napi::Value KcmMux::Unsent(const Napi::CallbackInfo& info) {
  double total = 0;
  for (const UniqueFd& kcm : sockets_) {
    uint32_t meminfo[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof meminfo;
    if (getsockopt(kcm.Get(), SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0) throw SysError(info.Env(), "getsockopt(SO_MEMINFO)", errno);
    // KCM adds a message to sk_wmem_queued at send() and takes it off once TCP has it all.
    total += meminfo[SK_MEMINFO_WMEM_QUEUED];
  }
  return Napi::Number::New(info.Env(), total);
}

void KcmMux::Attach() {
  kcm_attach attach{tcp_.Get(), program_.Get()};
  // KCM keeps its own references to the program and to the TCP socket's file.
  if (ioctl(sockets_[0].Get(), SIOCKCMATTACH, &attach) != 0) ThrowErrno("ioctl(SIOCKCMATTACH)");
  attached_ = true;
}

Napi::Value KcmMux::RestartTransmit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached_) throw SysError(env, "restartTransmit (mux closed)", EBADF);
  try {
    uint32_t meminfo[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof meminfo;
    if (getsockopt(tcp_.Get(), SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0) ThrowErrno("getsockopt(SO_MEMINFO)");
    // TCP still holds reply bytes: the psock may be sending a message part by part, and a
    // new one would start that message again from its first byte.
    if (meminfo[SK_MEMINFO_WMEM_QUEUED] != 0) return Napi::Boolean::New(env, false);
    // The abort left EPIPE pending on the TCP socket: the new psock's first send would fail too.
    GetIntOpt(tcp_.Get(), SOL_SOCKET, SO_ERROR, "getsockopt(SO_ERROR)");
    kcm_unattach unattach{tcp_.Get()};
    if (ioctl(sockets_[0].Get(), SIOCKCMUNATTACH, &unattach) != 0) {
      // EALREADY: the psock an earlier restart let go of was reserved by a send, so KCM
      // frees it later, from its transmit work, and meanwhile finds it first for this
      // socket. The live psock is untouched: try again later.
      if (errno == EALREADY) return Napi::Boolean::New(env, false);
      ThrowErrno("ioctl(SIOCKCMUNATTACH)");
    }
    attached_ = false;
    Attach();
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value KcmMux::ParserError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!parser_state_.Valid()) throw SysError(env, "parserError (mux closed)", EBADF);
  const uint32_t key = 0;
  KcmParserState state{}, scratch{};
  try {
    ReadStable(parser_state_.Get(), &key, &state, &scratch, sizeof state);
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
  return state.refused == 0 ? env.Null() : Napi::String::New(env, ErrnoName(static_cast<int>(state.refused)));
}

Napi::Value KcmMux::Close(const Napi::CallbackInfo& info) {
  const int err = Release();
  if (err != 0) throw SysError(info.Env(), "ioctl(SIOCKCMUNATTACH)", err);
  return info.Env().Undefined();
}

int KcmMux::Release() {
  hangup_.Stop();
  int err = 0;
  if (attached_) {
    // Explicit, so the TCP socket gets its own callbacks back before the caller
    // decides what to do with it; closing the last KCM socket would unattach too.
    kcm_unattach unattach{tcp_.Get()};
    if (ioctl(sockets_[0].Get(), SIOCKCMUNATTACH, &unattach) != 0) err = errno;
    attached_ = false;
  }
  sockets_.clear();
  program_.Reset(-1);
  parser_state_.Reset(-1);
  tcp_.Reset(-1);
  return err;
}

}  // namespace kmux
