#include "frame_tally.h"

#include <linux/tcp.h>  // struct tcp_info with bytes_received (glibc's lacks it)
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "bpf_syscall.h"
#include "sys_failure.h"

namespace kmux {
namespace {

constexpr uint8_t kTcpCloseWait = 8;  // include/net/tcp_states.h; glibc's enum clashes with linux/tcp.h

}  // namespace

void ReadStable(int map_fd, const void* key, void* value, void* scratch, size_t size) {
  if (bpf::MapLookup(map_fd, key, value) != 0) ThrowErrno("bpf(BPF_MAP_LOOKUP_ELEM, parser state)");
  for (;;) {
    if (bpf::MapLookup(map_fd, key, scratch) != 0) ThrowErrno("bpf(BPF_MAP_LOOKUP_ELEM, parser state)");
    if (std::memcmp(value, scratch, size) == 0) return;
    std::memcpy(value, scratch, size);
  }
}

int64_t TcpDataReceived(int tcp_fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(tcp_fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) ThrowErrno("getsockopt(TCP_INFO)");
  // bytes_received follows rcv_nxt, which the FIN advances by one. A socket in
  // CLOSE_WAIT got the peer's FIN after all its data (in order); anything else
  // (ESTABLISHED, CLOSE after a reset) has no final count.
  if (len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received) return -1;
  if (info.tcpi_state != kTcpCloseWait) return -1;
  return static_cast<int64_t>(info.tcpi_bytes_received) - 1;
}

Napi::Object ToJs(Napi::Env env, const FrameTally& tally) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("parsed", tally.parsed);
  out.Set("end", tally.end);
  out.Set("received", static_cast<double>(tally.received));
  out.Set("refused", tally.refused);
  return out;
}

}  // namespace kmux
