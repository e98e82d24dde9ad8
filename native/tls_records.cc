#include "tls_records.h"

#include <linux/tls.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace kmux {
namespace {

constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kWarning = 1;
constexpr uint8_t kCloseNotify = 0;
constexpr uint8_t kUserCanceled = 90;
constexpr uint8_t kHelloRequest = 0;
constexpr uint8_t kNewSessionTicket = 4;
constexpr uint8_t kKeyUpdate = 24;
/** A handshake message longer than this after the handshake is refused rather than buffered (tickets are small). */
constexpr size_t kMaxHandshakeMessage = 64 * 1024;

TlsRecords::Control Fatal(int err, std::string why) { return {TlsRecords::Outcome::kFatal, err, std::move(why)}; }

}  // namespace

ssize_t TlsRecords::Receive(int fd, uint8_t* data, size_t capacity, uint8_t* type) {
  iovec iov{data, capacity};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(unsigned char))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return n;
  *type = kApplicationData;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) *type = *CMSG_DATA(c);
  }
  return n;
}

ssize_t TlsRecords::Send(int fd, uint8_t type, const uint8_t* data, size_t len) {
  iovec iov{const_cast<uint8_t*>(data), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(unsigned char))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_TLS;
  c->cmsg_type = TLS_SET_RECORD_TYPE;
  c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
  *CMSG_DATA(c) = type;
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

void TlsRecords::SendCloseNotify(int fd) {
  const uint8_t alert[2] = {kWarning, kCloseNotify};
  (void)Send(fd, kAlert, alert, sizeof alert);
}

TlsRecords::Control TlsRecords::OnControl(uint8_t type, const uint8_t* data, size_t len) {
  if (type == kAlert) {
    if (len != 2) return Fatal(EPROTO, "an alert record of " + std::to_string(len) + " bytes");
    if (data[1] == kCloseNotify) return {Outcome::kCloseNotify, 0, {}};
    // user_canceled precedes a close_notify; TLS 1.2 warnings (no_renegotiation) are not fatal.
    if (data[1] == kUserCanceled || (data[0] == kWarning && !tls13_)) return {};
    return Fatal(ECONNABORTED, "the peer sent TLS alert " + std::to_string(data[1]) + " (level " + std::to_string(data[0]) + ")");
  }
  if (type != kHandshake) return Fatal(EPROTO, "unexpected TLS record of type " + std::to_string(type) + " after the handshake");
  handshake_.append(reinterpret_cast<const char*>(data), len);
  while (handshake_.size() >= 4) {
    const auto* head = reinterpret_cast<const uint8_t*>(handshake_.data());
    const size_t body = (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3];
    if (body > kMaxHandshakeMessage) return Fatal(EPROTO, "a handshake message of " + std::to_string(body) + " bytes after the handshake");
    if (handshake_.size() < 4 + body) return {};
    const Control control = OnHandshakeMessage(head[0], head + 4, body);
    handshake_.erase(0, 4 + body);
    if (control.outcome != Outcome::kNone) return control;
  }
  return {};
}

TlsRecords::Control TlsRecords::OnHandshakeMessage(uint8_t type, const uint8_t* body, size_t len) {
  // Resumption is not offered after a handoff: tickets are consumed. A TLS 1.2 client may decline renegotiation silently.
  if (tls13_ && type == kNewSessionTicket) return {};
  if (!tls13_ && type == kHelloRequest) return {};
  if (tls13_ && type == kKeyUpdate && len == 1 && body[0] <= 1) {
    return {body[0] == 1 ? Outcome::kKeyUpdateRequested : Outcome::kKeyUpdate, 0, {}};
  }
  return Fatal(EPROTO, "unexpected handshake message of type " + std::to_string(type) + " after the handshake");
}

}  // namespace kmux
