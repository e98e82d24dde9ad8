// kTLS: the record layer in the kernel, after a user-space handshake.
//
// Synchronous, fd-level calls; none of them blocks (MSG_DONTWAIT), and each
// failure is thrown as a SysError naming the call and its errno (errors.h).
// Readiness comes from FdPoll (fd_poll.h), so JS decides when to read or write.
//
//   enableKtls(fd, { direction, version, cipher, key, iv, salt, recSeq })
//       TCP_ULP "tls" (once per socket), then TLS_TX or TLS_RX. The key, iv and
//       salt Buffers and the kernel crypto_info struct are zeroed afterwards,
//       whether the call succeeded or not.
//   recvRecord(fd, buffer) -> { bytes, recordType } | null (EAGAIN)
//       recvmsg with room for the TLS_GET_RECORD_TYPE cmsg: a kTLS socket gives
//       EIO to a plain recv() when the next record is not application data.
//       recordType is null when there was no cmsg (a socket without TLS_RX).
//       bytes 0: end of stream.
//   sendRecord(fd, buffer, recordType) -> bytes | null (EAGAIN)
//       sendmsg with a TLS_SET_RECORD_TYPE cmsg (alerts, handshake messages).
//   send(fd, buffer) -> bytes | null (EAGAIN)
//   dupFd(fd) -> fd (close-on-exec), closeFd(fd), shutdown(fd, "read"|"write"|"both"),
//   setNoDelay(fd, on), noDelay(fd) -> whether TCP_NODELAY is set
#pragma once

#include <napi.h>

namespace kmux {
namespace ktls {

/** The `ktls` object of the addon: the functions above and the FdPoll class. */
Napi::Object Define(Napi::Env env);

}  // namespace ktls
}  // namespace kmux
