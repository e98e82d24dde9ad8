// A kTLS connection's records as the native I/O thread (io_loop.h) reads them: TLS_RX
// is set, so the kernel decrypts and recvmsg gives plaintext, one record type per read,
// the type in a TLS_GET_RECORD_TYPE cmsg (a plain recv() of a control record fails EIO).
// Data records go to the frame splitter; this class says what each control record means,
// with the rules of the JS KtlsSocket (packages/core/src/tls/ktls-socket.ts):
// close_notify ends the stream, user_canceled and TLS 1.2 warnings are ignored, any other
// alert is fatal; NewSessionTicket is consumed, TLS 1.2 HelloRequest ignored, a TLS 1.3
// KeyUpdate stops reading until the main thread has given the kernel the next key (or
// chosen to end the connection); anything else is a protocol error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace kmux {

class TlsRecords {
 public:
  static constexpr uint8_t kApplicationData = 23;

  enum class Outcome {
    kNone,                // consumed; read on
    kCloseNotify,         // the peer's orderly end
    kKeyUpdate,           // a KeyUpdate, update_not_requested: reading must stop here
    kKeyUpdateRequested,  // ... update_requested: our own KeyUpdate is owed too
    kFatal,               // the connection ends with `err` and `why`
  };
  struct Control {
    Outcome outcome = Outcome::kNone;
    int err = 0;
    std::string why;
  };

  explicit TlsRecords(bool tls13) : tls13_(tls13) {}

  /**
   * recvmsg with room for the record-type cmsg, MSG_DONTWAIT. Returns bytes (0: the peer's FIN)
   * or -1 with errno (EBADMSG: a record failed authentication); `type` is the record's type
   * (application data when the kernel gave no cmsg).
   */
  static ssize_t Receive(int fd, uint8_t* data, size_t capacity, uint8_t* type);
  /** Sends one record of `type` (alert 21, handshake 22) with TLS_SET_RECORD_TYPE; -1 with errno. */
  static ssize_t Send(int fd, uint8_t type, const uint8_t* data, size_t len);
  /** Our close_notify alert, best effort (non-blocking). */
  static void SendCloseNotify(int fd);

  /** What a record that is not application data means for the connection. */
  Control OnControl(uint8_t type, const uint8_t* data, size_t len);

 private:
  Control OnHandshakeMessage(uint8_t type, const uint8_t* body, size_t len);

  const bool tls13_;
  std::string handshake_;  // handshake messages may share a record or span several
};

}  // namespace kmux
