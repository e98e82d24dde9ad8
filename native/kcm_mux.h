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
  /** The parser's count and the TCP socket's data bytes: { parsed, end, received } (frame_tally.h). */
  Napi::Value Framed(const Napi::CallbackInfo& info);
  /**
   * Bytes the KCM sockets hold that TCP has not taken yet. A send() that returned has only
   * queued its message on the KCM socket (the mux sends one message at a time on the TCP
   * socket); unattaching now would drop it, so a clean close waits for 0.
   */
  Napi::Value Unsent(const Napi::CallbackInfo& info);
  /**
   * Gives the TCP socket a fresh psock once KCM stopped transmitting on the old one for good:
   * after the peer's FIN, KCM's state-change hook sets EPIPE on the TCP socket, and a reply
   * send that meets it aborts the psock (kcm_abort_tx_psock), leaving every later reply queued
   * on the KCM sockets; a new attach takes them. Unattaching drops a parsed message no KCM
   * socket took yet, so only call it once every request was read. Returns false, doing
   * nothing, while TCP still holds reply bytes (the transmit is alive).
   */
  Napi::Value RestartTransmit(const Napi::CallbackInfo& info);
  /** 'EMSGSIZE' once the parser refused a length (KcmParserState.refused), else null. */
  Napi::Value ParserError(const Napi::CallbackInfo& info);
  /** Attaches the TCP socket through sockets_[0] with the parser. */
  void Attach();
  /** Unattaches and closes everything; returns the errno of a failed unattach, or 0. */
  int Release();

  UniqueFd tcp_;                  // our duplicate of the caller's TCP fd
  UniqueFd program_;              // the parser, kept for RestartTransmit's new attach
  UniqueFd parser_state_;         // the parser's state map (KcmParserState)
  std::vector<UniqueFd> sockets_; // [0] is the KCM socket the TCP socket is attached through
  HangupWatch hangup_;
  bool attached_ = false;
};

}  // namespace kmux
