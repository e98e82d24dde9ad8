// Watches a TCP socket that the kernel is framing (attached to KCM or in a
// sockmap) for the end of the connection. Nothing else reads that socket, so
// nothing else would notice: a peer FIN or RST, or a parser that returned an
// error (strparser then sets sk_err, e.g. EMSGSIZE), which otherwise leaves the
// connection silently dead. Reports once, then stops.
#pragma once

#include <napi.h>

#include "uv_poll_handle.h"

namespace kmux {

class HangupWatch {
 public:
  /** Starts watching fd on env's loop; callback(err) gets a SysError-shaped object. Throws SysFailure. */
  void Start(Napi::Env env, int fd, Napi::Function callback);
  void Stop();

 private:
  static void OnEvent(void* self, int status, int events);

  Napi::Env env_ = nullptr;
  int fd_ = -1;
  UvPollHandle poll_;
  Napi::FunctionReference callback_;
};

}  // namespace kmux
