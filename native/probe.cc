#include "probe.h"

#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/kcm.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "bpf_syscall.h"
#include "socket_opts.h"
#include "unique_fd.h"

namespace kmux {
namespace {

Check Ok(const char* call) { return Check{true, 0, call}; }
Check Failed(const char* call) { return Check{false, errno, call}; }

/** A connected pair of loopback TCP sockets (the listener is closed again). */
struct TcpPair {
  UniqueFd client;
  UniqueFd server;
};

Check ConnectLoopback(TcpPair& pair) {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.Valid()) return Failed("socket(AF_INET, SOCK_STREAM)");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return Failed("bind(127.0.0.1:0)");
  if (listen(listener.Get(), 1) != 0) return Failed("listen");
  if (getsockname(listener.Get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return Failed("getsockname");
  pair.client.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!pair.client.Valid()) return Failed("socket(AF_INET, SOCK_STREAM)");
  // Loopback connect completes against the backlog, so a blocking connect then accept cannot hang.
  if (connect(pair.client.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return Failed("connect(127.0.0.1)");
  pair.server.Reset(accept4(listener.Get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!pair.server.Valid()) return Failed("accept4");
  return Ok("connect(127.0.0.1)");
}

Check ProbeKcm() {
  UniqueFd kcm(socket(AF_KCM, SOCK_DGRAM | SOCK_CLOEXEC, KCMPROTO_CONNECTED));
  if (!kcm.Valid()) return Failed("socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)");
  return Ok("socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)");
}

/** What the KCM transport does per connection: attach a TCP socket with a BPF message parser. */
Check ProbeKcmAttach() {
  UniqueFd kcm(socket(AF_KCM, SOCK_DGRAM | SOCK_CLOEXEC, KCMPROTO_CONNECTED));
  if (!kcm.Valid()) return Failed("socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)");
  // Message length = the whole skb: enough to be accepted, never run (no data is sent).
  const bpf_insn parser[] = {bpf::LoadU32(BPF_REG_0, BPF_REG_1, offsetof(__sk_buff, len)), bpf::Exit()};
  UniqueFd prog(bpf::ProgLoad(BPF_PROG_TYPE_SOCKET_FILTER, parser, 2));
  if (!prog.Valid()) return Failed("bpf(BPF_PROG_LOAD, SOCKET_FILTER parser)");
  TcpPair pair;
  Check connected = ConnectLoopback(pair);
  if (!connected.ok) return connected;
  kcm_attach attach{pair.server.Get(), prog.Get()};
  if (ioctl(kcm.Get(), SIOCKCMATTACH, &attach) != 0) return Failed("ioctl(SIOCKCMATTACH)");
  return Ok("ioctl(SIOCKCMATTACH)");
}

Check SetTlsUlp(int fd) {
  static const char kUlp[] = "tls";
  if (setsockopt(fd, SOL_TCP, TCP_ULP, kUlp, sizeof kUlp) != 0) return Failed("setsockopt(SOL_TCP, TCP_ULP, \"tls\")");
  return Ok("setsockopt(SOL_TCP, TCP_ULP, \"tls\")");
}

Check ProbeTlsUlp() {
  TcpPair pair;
  Check connected = ConnectLoopback(pair);
  if (!connected.ok) return connected;
  return SetTlsUlp(pair.client.Get());
}

/** Crypto info with an all-zero dummy key: the kernel only checks that it can set the cipher up. */
template <typename Info>
Info DummyCryptoInfo(uint16_t cipher_type) {
  Info info;
  std::memset(&info, 0, sizeof info);
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = cipher_type;
  return info;
}

template <typename Info>
Check SetTlsKey(int fd, int direction, const Info& info) {
  const char* call = direction == TLS_TX ? "setsockopt(SOL_TLS, TLS_TX)" : "setsockopt(SOL_TLS, TLS_RX)";
  if (setsockopt(fd, SOL_TLS, direction, &info, sizeof info) != 0) return Failed(call);
  return Ok(call);
}

/**
 * TX and RX are each settable once per socket (a second try gives EBUSY), so one
 * fresh connection per cipher tests both directions independently of the others.
 */
template <typename Info>
CipherCheck ProbeCipher(const char* name, uint16_t cipher_type) {
  CipherCheck result{name, {}, {}};
  TcpPair pair;
  Check ready = ConnectLoopback(pair);
  if (ready.ok) ready = SetTlsUlp(pair.client.Get());
  if (!ready.ok) {
    result.tx = ready;
    result.rx = ready;
    return result;
  }
  const Info info = DummyCryptoInfo<Info>(cipher_type);
  result.tx = SetTlsKey(pair.client.Get(), TLS_TX, info);
  result.rx = SetTlsKey(pair.client.Get(), TLS_RX, info);
  return result;
}

/**
 * A TLS 1.3 KeyUpdate installs the next key with a second TLS_TX / TLS_RX on the same
 * socket: Linux takes it from 6.14 on and answers EBUSY before. Tried for real here,
 * because a distribution kernel's version number says nothing about backports.
 */
Check ProbeTlsRekey() {
  TcpPair pair;
  Check ready = ConnectLoopback(pair);
  if (ready.ok) ready = SetTlsUlp(pair.client.Get());
  if (!ready.ok) return ready;
  const auto info = DummyCryptoInfo<tls12_crypto_info_aes_gcm_128>(TLS_CIPHER_AES_GCM_128);
  Check first = SetTlsKey(pair.client.Get(), TLS_TX, info);
  if (!first.ok) return first;
  if (setsockopt(pair.client.Get(), SOL_TLS, TLS_TX, &info, sizeof info) != 0) return Failed("a second setsockopt(SOL_TLS, TLS_TX)");
  return Ok("a second setsockopt(SOL_TLS, TLS_TX)");
}

Check ProbeBpfProg() {
  const bpf_insn accept_nothing[] = {bpf::MovImm(BPF_REG_0, 0), bpf::Exit()};
  UniqueFd prog(bpf::ProgLoad(BPF_PROG_TYPE_SOCKET_FILTER, accept_nothing, 2));
  if (!prog.Valid()) return Failed("bpf(BPF_PROG_LOAD, SOCKET_FILTER)");
  return Ok("bpf(BPF_PROG_LOAD, SOCKET_FILTER)");
}

/**
 * The whole sockmap path that a framing transport needs: the map, a stream
 * parser (frame = whole skb) and verdict (pass) attached to it, and a TCP
 * socket inserted, which is the moment the kernel starts strparser on it.
 */
void ProbeSockmap(KernelProbe& out) {
  UniqueFd map(bpf::MapCreate(BPF_MAP_TYPE_SOCKMAP, sizeof(uint32_t), sizeof(uint32_t), 1));
  if (!map.Valid()) {
    out.sockmap_map = out.sockmap_parser = out.sockmap_insert = Failed("bpf(BPF_MAP_CREATE, SOCKMAP)");
    return;
  }
  out.sockmap_map = Ok("bpf(BPF_MAP_CREATE, SOCKMAP)");

  const bpf_insn parser[] = {bpf::LoadU32(BPF_REG_0, BPF_REG_1, offsetof(__sk_buff, len)), bpf::Exit()};
  const bpf_insn verdict[] = {bpf::MovImm(BPF_REG_0, SK_PASS), bpf::Exit()};
  UniqueFd parser_prog(bpf::ProgLoad(BPF_PROG_TYPE_SK_SKB, parser, 2));
  if (!parser_prog.Valid()) {
    out.sockmap_parser = out.sockmap_insert = Failed("bpf(BPF_PROG_LOAD, SK_SKB parser)");
    return;
  }
  UniqueFd verdict_prog(bpf::ProgLoad(BPF_PROG_TYPE_SK_SKB, verdict, 2));
  if (!verdict_prog.Valid()) {
    out.sockmap_parser = out.sockmap_insert = Failed("bpf(BPF_PROG_LOAD, SK_SKB verdict)");
    return;
  }
  if (bpf::ProgAttach(parser_prog.Get(), map.Get(), BPF_SK_SKB_STREAM_PARSER) != 0) {
    out.sockmap_parser = out.sockmap_insert = Failed("bpf(BPF_PROG_ATTACH, SK_SKB_STREAM_PARSER)");
    return;
  }
  if (bpf::ProgAttach(verdict_prog.Get(), map.Get(), BPF_SK_SKB_STREAM_VERDICT) != 0) {
    out.sockmap_parser = out.sockmap_insert = Failed("bpf(BPF_PROG_ATTACH, SK_SKB_STREAM_VERDICT)");
    return;
  }
  out.sockmap_parser = Ok("bpf(BPF_PROG_ATTACH, SK_SKB_STREAM_PARSER + VERDICT)");

  TcpPair pair;
  Check connected = ConnectLoopback(pair);
  if (!connected.ok) {
    out.sockmap_insert = connected;
    return;
  }
  const uint32_t key = 0;
  const uint32_t value = static_cast<uint32_t>(pair.server.Get());
  if (bpf::MapUpdate(map.Get(), &key, &value, BPF_ANY) != 0) {
    out.sockmap_insert = Failed("bpf(BPF_MAP_UPDATE_ELEM, SOCKMAP, tcp socket)");
    return;
  }
  out.sockmap_insert = Ok("bpf(BPF_MAP_UPDATE_ELEM, SOCKMAP, tcp socket)");
}

/** Effective capabilities of the calling thread (capabilities are per thread). */
Capabilities ProbeCapabilities() {
  Capabilities caps;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    caps.query = Failed("capget");
    return caps;
  }
  caps.query = Ok("capget");
  auto has = [&data](int cap) { return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0; };
  caps.bpf = has(CAP_BPF);
  caps.net_admin = has(CAP_NET_ADMIN);
  return caps;
}

}  // namespace

KernelProbe ProbeKernel() {
  KernelProbe probe;
  utsname uts{};
  probe.release = uname(&uts) == 0 ? std::string(uts.release) : std::string("unknown (uname: ") + std::strerror(errno) + ")";
  probe.kcm = ProbeKcm();
  probe.kcm_attach = ProbeKcmAttach();
  probe.tls_ulp = ProbeTlsUlp();
  probe.tls_ciphers.push_back(
      ProbeCipher<tls12_crypto_info_aes_gcm_128>("aes-gcm-128", TLS_CIPHER_AES_GCM_128));
  probe.tls_ciphers.push_back(
      ProbeCipher<tls12_crypto_info_aes_gcm_256>("aes-gcm-256", TLS_CIPHER_AES_GCM_256));
  probe.tls_ciphers.push_back(
      ProbeCipher<tls12_crypto_info_chacha20_poly1305>("chacha20-poly1305", TLS_CIPHER_CHACHA20_POLY1305));
  probe.tls_rekey = ProbeTlsRekey();
  probe.bpf_prog = ProbeBpfProg();
  ProbeSockmap(probe);
  probe.caps = ProbeCapabilities();
  return probe;
}

}  // namespace kmux
