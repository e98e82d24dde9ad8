// A KCM multiplexor over one TCP connection (JS class KcmMux): the TCP socket
// attached with kmux's KCM parser, and N KCM sockets (the first one and N-1
// clones) that each receive whole messages and send whole messages on it.
#pragma once

#include <napi.h>

#include <vector>

#include "hangup_watch.h"
#include "unique_fd.h"

namespace kmux {

class KcmMux : public Napi::ObjectWrap<KcmMux> {
 public:
  static Napi::Function Define(Napi::Env env);

  /** new KcmMux(tcpFd, maxFrameBytes, sockets, onHangup) */
  explicit KcmMux(const Napi::CallbackInfo& info);
  ~KcmMux() override;

 private:
  Napi::Value Fds(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  /** Unattaches and closes everything; returns the errno of a failed unattach, or 0. */
  int Release();

  UniqueFd tcp_;                  // our duplicate of the caller's TCP fd
  std::vector<UniqueFd> sockets_; // [0] is the KCM socket the TCP socket is attached through
  HangupWatch hangup_;
  bool attached_ = false;
};

}  // namespace kmux
