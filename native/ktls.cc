#include "ktls.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>  // explicit_bzero
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "errors.h"
#include "fd_poll.h"
#include "socket_opts.h"
#include "tls_records.h"

namespace kmux {
namespace ktls {
namespace {

/** Every crypto_info the kernel takes starts with the common header; the union is as large as the largest. */
union CryptoInfo {
  tls_crypto_info info;
  tls12_crypto_info_aes_gcm_128 gcm128;
  tls12_crypto_info_aes_gcm_256 gcm256;
  tls12_crypto_info_chacha20_poly1305 chacha;
};

/**
 * The crypto_info on the stack, wiped on every way out of enableKtls. explicit_bzero
 * because a plain memset of memory that is never read again may be optimised away.
 */
class WipedCryptoInfo {
 public:
  WipedCryptoInfo() { explicit_bzero(&u_, sizeof u_); }
  ~WipedCryptoInfo() { explicit_bzero(&u_, sizeof u_); }
  WipedCryptoInfo(const WipedCryptoInfo&) = delete;
  WipedCryptoInfo& operator=(const WipedCryptoInfo&) = delete;
  CryptoInfo& Get() { return u_; }

 private:
  CryptoInfo u_;
};

/** Zeroes the caller's key material when enableKtls returns or throws, whatever happened. */
class WipeOnExit {
 public:
  void Add(Napi::Uint8Array array) { arrays_[count_++] = {array.Data(), array.ByteLength()}; }
  ~WipeOnExit() {
    for (int i = 0; i < count_; i++) explicit_bzero(arrays_[i].data, arrays_[i].size);
  }

 private:
  struct Span {
    uint8_t* data;
    size_t size;
  };
  Span arrays_[3] = {};
  int count_ = 0;
};

struct CipherLayout {
  const char* name;
  uint16_t type;
  size_t key, iv, salt, size;
};

// Sizes from linux/tls.h. TLS_CIPHER_*_REC_SEQ_SIZE is 8 for all of them.
constexpr CipherLayout kCiphers[] = {
    {"aes-gcm-128", TLS_CIPHER_AES_GCM_128, TLS_CIPHER_AES_GCM_128_KEY_SIZE, TLS_CIPHER_AES_GCM_128_IV_SIZE,
     TLS_CIPHER_AES_GCM_128_SALT_SIZE, sizeof(tls12_crypto_info_aes_gcm_128)},
    {"aes-gcm-256", TLS_CIPHER_AES_GCM_256, TLS_CIPHER_AES_GCM_256_KEY_SIZE, TLS_CIPHER_AES_GCM_256_IV_SIZE,
     TLS_CIPHER_AES_GCM_256_SALT_SIZE, sizeof(tls12_crypto_info_aes_gcm_256)},
    {"chacha20-poly1305", TLS_CIPHER_CHACHA20_POLY1305, TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE,
     TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE, TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE,
     sizeof(tls12_crypto_info_chacha20_poly1305)},
};
constexpr size_t kRecSeqSize = 8;

int FdArg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must be a number");
  return info[0].As<Napi::Number>().Int32Value();
}

Napi::Uint8Array BytesArg(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, what + " must be a Buffer or Uint8Array");
  }
  return value.As<Napi::Uint8Array>();
}

/** The bytes of one field of the options object, checked for its exact length. */
Napi::Uint8Array Field(Napi::Env env, Napi::Object options, const char* name, size_t length) {
  Napi::Uint8Array bytes = BytesArg(env, options.Get(name), std::string("enableKtls: ") + name);
  if (bytes.ByteLength() != length) {
    throw Napi::RangeError::New(env, std::string("enableKtls: ") + name + " must be " + std::to_string(length) +
                                         " bytes, got " + std::to_string(bytes.ByteLength()));
  }
  return bytes;
}

/**
 * Attaches the "tls" ULP unless it already is (TX and RX are set by two calls, and a
 * second TCP_ULP would fail with EEXIST). Another ULP on the socket is an error.
 */
void EnsureTlsUlp(Napi::Env env, int fd) {
  char name[16] = {};
  socklen_t len = sizeof name;
  if (getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) != 0) throw SysError(env, "getsockopt(SOL_TCP, TCP_ULP)", errno);
  if (len > 0 && name[0] != '\0') {
    if (std::strncmp(name, "tls", sizeof name) == 0) return;
    throw SysError(env, std::string("setsockopt(SOL_TCP, TCP_ULP, \"tls\"): the socket has ULP \"") + name + "\"", EEXIST);
  }
  static const char kUlp[] = "tls";
  if (setsockopt(fd, SOL_TCP, TCP_ULP, kUlp, sizeof kUlp) != 0) throw SysError(env, "setsockopt(SOL_TCP, TCP_ULP, \"tls\")", errno);
}

Napi::Value EnableKtls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WipeOnExit wipe;
  // Register the key material for wiping before anything can throw.
  if (info.Length() >= 2 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    for (const char* name : {"key", "iv", "salt"}) {
      Napi::Value v = o.Get(name);
      if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) wipe.Add(v.As<Napi::Uint8Array>());
    }
  }
  const int fd = FdArg(info, "enableKtls");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "enableKtls(fd, options): options must be an object");
  Napi::Object options = info[1].As<Napi::Object>();

  const std::string direction = options.Get("direction").ToString().Utf8Value();
  if (direction != "tx" && direction != "rx") throw Napi::RangeError::New(env, "enableKtls: direction must be \"tx\" or \"rx\"");
  const uint32_t version = options.Get("version").ToNumber().Uint32Value();
  if (version != TLS_1_2_VERSION && version != TLS_1_3_VERSION) {
    throw Napi::RangeError::New(env, "enableKtls: version must be 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)");
  }
  const std::string cipher = options.Get("cipher").ToString().Utf8Value();
  const CipherLayout* layout = nullptr;
  for (const CipherLayout& c : kCiphers) {
    if (cipher == c.name) layout = &c;
  }
  if (layout == nullptr) {
    throw Napi::RangeError::New(env, "enableKtls: cipher must be aes-gcm-128, aes-gcm-256 or chacha20-poly1305, got " + cipher);
  }
  Napi::Uint8Array key = Field(env, options, "key", layout->key);
  Napi::Uint8Array iv = Field(env, options, "iv", layout->iv);
  Napi::Uint8Array salt = Field(env, options, "salt", layout->salt);
  Napi::Uint8Array rec_seq = Field(env, options, "recSeq", kRecSeqSize);

  WipedCryptoInfo crypto;
  CryptoInfo& u = crypto.Get();
  u.info.version = static_cast<uint16_t>(version);
  u.info.cipher_type = layout->type;
  // The per-cipher structs share one layout: header, iv, key, salt, rec_seq.
  auto fill = [&](auto& s) {
    std::memcpy(s.iv, iv.Data(), sizeof s.iv);
    std::memcpy(s.key, key.Data(), sizeof s.key);
    std::memcpy(s.salt, salt.Data(), sizeof s.salt);
    std::memcpy(s.rec_seq, rec_seq.Data(), sizeof s.rec_seq);
  };
  switch (layout->type) {
    case TLS_CIPHER_AES_GCM_128: fill(u.gcm128); break;
    case TLS_CIPHER_AES_GCM_256: fill(u.gcm256); break;
    default: {
      // ChaCha20-Poly1305 has no salt: the whole 12-byte nonce base is the iv.
      std::memcpy(u.chacha.iv, iv.Data(), sizeof u.chacha.iv);
      std::memcpy(u.chacha.key, key.Data(), sizeof u.chacha.key);
      std::memcpy(u.chacha.rec_seq, rec_seq.Data(), sizeof u.chacha.rec_seq);
    }
  }

  EnsureTlsUlp(env, fd);
  const bool tx = direction == "tx";
  if (setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, &u, static_cast<socklen_t>(layout->size)) != 0) {
    throw SysError(env, tx ? "setsockopt(SOL_TLS, TLS_TX)" : "setsockopt(SOL_TLS, TLS_RX)", errno);
  }
  return env.Undefined();
}

Napi::Value RecvRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "recvRecord");
  Napi::Uint8Array buffer = BytesArg(env, info[1], "recvRecord: buffer");
  iovec iov{buffer.Data(), buffer.ByteLength()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(unsigned char))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    throw SysError(env, "recvmsg", errno);
  }
  // kTLS refuses (EIO) to hand out a control record whose type it cannot report, so
  // MSG_CTRUNC cannot happen with room for the cmsg; checked all the same.
  if ((msg.msg_flags & MSG_CTRUNC) != 0) throw SysError(env, "recvmsg (control data truncated)", EMSGSIZE);
  Napi::Value record_type = env.Null();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) {
      record_type = Napi::Number::New(env, *reinterpret_cast<unsigned char*>(CMSG_DATA(c)));
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
  out.Set("recordType", record_type);
  return out;
}

/** sendmsg with MSG_DONTWAIT | MSG_NOSIGNAL (EPIPE, not SIGPIPE); null on EAGAIN. */
Napi::Value SendWith(Napi::Env env, int fd, msghdr& msg, const char* call) {
  for (;;) {
    const ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    throw SysError(env, call, errno);
  }
}

Napi::Value SendRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "sendRecord");
  Napi::Uint8Array buffer = BytesArg(env, info[1], "sendRecord: buffer");
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "sendRecord: recordType must be a number");
  const uint32_t type = info[2].As<Napi::Number>().Uint32Value();
  if (type > 255) throw Napi::RangeError::New(env, "sendRecord: recordType must be 0..255");
  const ssize_t n = TlsRecords::Send(fd, static_cast<uint8_t>(type), buffer.Data(), buffer.ByteLength());
  if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
  if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
  throw SysError(env, "sendmsg(TLS_SET_RECORD_TYPE)", errno);
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "send");
  Napi::Uint8Array buffer = BytesArg(env, info[1], "send: buffer");
  iovec iov{buffer.Data(), buffer.ByteLength()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return SendWith(env, fd, msg, "sendmsg");
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, "dupFd");
  const int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) throw SysError(info.Env(), "fcntl(F_DUPFD_CLOEXEC)", errno);
  return Napi::Number::New(info.Env(), dup);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, "closeFd");
  // Linux releases the fd even when close() reports EINTR, so it is never retried.
  if (close(fd) != 0 && errno != EINTR) throw SysError(info.Env(), "close", errno);
  return info.Env().Undefined();
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "shutdown");
  const std::string how = info[1].ToString().Utf8Value();
  const int flag = how == "read" ? SHUT_RD : how == "write" ? SHUT_WR : how == "both" ? SHUT_RDWR : -1;
  if (flag < 0) throw Napi::RangeError::New(env, "shutdown: how must be \"read\", \"write\" or \"both\"");
  if (shutdown(fd, flag) != 0) throw SysError(env, "shutdown(" + how + ")", errno);
  return env.Undefined();
}

/** ioctl(SIOCOUTQ): bytes written that the peer has not acknowledged yet (TCP). */
Napi::Value UnackedBytes(const Napi::CallbackInfo& info) {
  const int fd = FdArg(info, "unackedBytes");
  int bytes = 0;
  if (ioctl(fd, SIOCOUTQ, &bytes) != 0) throw SysError(info.Env(), "ioctl(SIOCOUTQ)", errno);
  return Napi::Number::New(info.Env(), bytes);
}

Napi::Value SetNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "setNoDelay");
  const int on = info[1].ToBoolean().Value() ? 1 : 0;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) throw SysError(env, "setsockopt(TCP_NODELAY)", errno);
  return env.Undefined();
}

Napi::Value NoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArg(info, "noDelay");
  int on = 0;
  socklen_t len = sizeof on;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) throw SysError(env, "getsockopt(TCP_NODELAY)", errno);
  return Napi::Boolean::New(env, on != 0);
}

}  // namespace

Napi::Object Define(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("enableKtls", Napi::Function::New(env, EnableKtls, "enableKtls"));
  out.Set("recvRecord", Napi::Function::New(env, RecvRecord, "recvRecord"));
  out.Set("sendRecord", Napi::Function::New(env, SendRecord, "sendRecord"));
  out.Set("send", Napi::Function::New(env, Send, "send"));
  out.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  out.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  out.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  out.Set("setNoDelay", Napi::Function::New(env, SetNoDelay, "setNoDelay"));
  out.Set("noDelay", Napi::Function::New(env, NoDelay, "noDelay"));
  out.Set("unackedBytes", Napi::Function::New(env, UnackedBytes, "unackedBytes"));
  out.Set("FdPoll", FdPoll::Define(env));
  return out;
}

}  // namespace ktls
}  // namespace kmux
