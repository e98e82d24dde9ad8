#include "sockmap.h"

#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "bpf_programs.h"
#include "bpf_syscall.h"
#include "errors.h"
#include "frame_tally.h"
#include "socket_opts.h"
#include "sys_failure.h"

namespace kmux {

Napi::Function Sockmap::Define(Napi::Env env) {
  return DefineClass(env, "Sockmap",
                     {InstanceMethod("add", &Sockmap::Add), InstanceMethod("remove", &Sockmap::Remove),
                      InstanceMethod("close", &Sockmap::Close), InstanceMethod("entries", &Sockmap::Entries),
                      InstanceMethod("framed", &Sockmap::Framed)});
}

Sockmap::Sockmap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Sockmap>(info),
      max_frame_(info[0].As<Napi::Number>().Uint32Value()),
      workers_(info[1].As<Napi::Number>().Uint32Value()),
      target_rcvbuf_(info[3].As<Napi::Number>().Uint32Value()) {
  const uint32_t capacity = info[2].As<Napi::Number>().Uint32Value();
  try {
    state_map_.Reset(bpf::MapCreate(BPF_MAP_TYPE_HASH, sizeof(uint64_t), sizeof(SockmapConnState), capacity));
    if (!state_map_.Valid()) ThrowErrno("bpf(BPF_MAP_CREATE, HASH, parser state)");
    // 8-byte values (fds in, cookies out): a lookup then tells an empty slot (ENOENT) from a used one.
    parser_map_.Reset(bpf::MapCreate(BPF_MAP_TYPE_SOCKMAP, sizeof(uint32_t), sizeof(uint64_t), capacity));
    if (!parser_map_.Valid()) ThrowErrno("bpf(BPF_MAP_CREATE, SOCKMAP, connections)");
    target_map_.Reset(bpf::MapCreate(BPF_MAP_TYPE_SOCKMAP, sizeof(uint32_t), sizeof(uint64_t), capacity * workers_));
    if (!target_map_.Valid()) ThrowErrno("bpf(BPF_MAP_CREATE, SOCKMAP, targets)");
    // The map holds the programs once attached; their fds can go.
    UniqueFd parser = LoadSockmapParser(state_map_.Get(), max_frame_);
    UniqueFd verdict = LoadSockmapVerdict(state_map_.Get(), target_map_.Get());
    if (bpf::ProgAttach(parser.Get(), parser_map_.Get(), BPF_SK_SKB_STREAM_PARSER) != 0) {
      ThrowErrno("bpf(BPF_PROG_ATTACH, SK_SKB_STREAM_PARSER)");
    }
    if (bpf::ProgAttach(verdict.Get(), parser_map_.Get(), BPF_SK_SKB_STREAM_VERDICT) != 0) {
      ThrowErrno("bpf(BPF_PROG_ATTACH, SK_SKB_STREAM_VERDICT)");
    }
  } catch (const SysFailure& failure) {
    throw SysError(info.Env(), failure);
  }
  slots_.resize(capacity);
}

Sockmap::~Sockmap() {
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) Teardown(slot);
}

void Sockmap::Setup(uint32_t slot, Connection& conn) {
  // strparser refuses a frame above the TCP socket's sk_rcvbuf (EMSGSIZE, wedged) and stalls near it.
  EnsureRcvbuf(conn.tcp.Get(), 2 * (static_cast<uint64_t>(max_frame_) + 4) + 65536);
  socklen_t len = sizeof conn.cookie;
  if (getsockopt(conn.tcp.Get(), SOL_SOCKET, SO_COOKIE, &conn.cookie, &len) != 0) ThrowErrno("getsockopt(SO_COOKIE)");
  for (uint32_t w = 0; w < workers_; ++w) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) ThrowErrno("socketpair(AF_UNIX, SOCK_STREAM)");
    conn.readers.emplace_back(pair[0]);
    conn.writers.emplace_back(pair[1]);
    // Each redirected frame is charged the truesize of its whole original skb:
    // the default rcvbuf throttles to ~30k frames/s (sockmap-lab finding 5).
    EnsureRcvbuf(pair[0], target_rcvbuf_);
    const uint32_t key = slot * workers_ + w;
    const uint64_t fd = static_cast<uint64_t>(pair[0]);
    if (bpf::MapUpdate(target_map_.Get(), &key, &fd, BPF_ANY) != 0) ThrowErrno("bpf(BPF_MAP_UPDATE_ELEM, targets)");
  }
  SockmapConnState state{};
  state.base = slot * workers_;
  state.targets = workers_;
  if (bpf::MapUpdate(state_map_.Get(), &conn.cookie, &state, BPF_NOEXIST) != 0) ThrowErrno("bpf(BPF_MAP_UPDATE_ELEM, parser state)");
  const uint64_t fd = static_cast<uint64_t>(conn.tcp.Get());
  if (bpf::MapUpdate(parser_map_.Get(), &slot, &fd, BPF_NOEXIST) != 0) ThrowErrno("bpf(BPF_MAP_UPDATE_ELEM, connections)");
  // Bytes that arrived before the insert are not parsed until more arrive;
  // setting SO_RCVLOWAT makes TCP call the (now strparser's) data_ready hook.
  const int one = 1;
  if (setsockopt(conn.tcp.Get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one) != 0) ThrowErrno("setsockopt(SO_RCVLOWAT)");
}

Napi::Value Sockmap::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!parser_map_.Valid()) throw SysError(env, "sockmap add (closed)", EBADF);
  uint32_t slot = 0;
  while (slot < slots_.size() && slots_[slot]) ++slot;
  if (slot == slots_.size()) throw SysError(env, "sockmap add: all " + std::to_string(slots_.size()) + " slots in use", ENOSPC);
  try {
    slots_[slot] = std::make_unique<Connection>();
    if (slot >= high_water_) high_water_ = slot + 1;
    Connection& conn = *slots_[slot];
    conn.tcp = DupFd(info[0].As<Napi::Number>().Int32Value());
    Setup(slot, conn);
    conn.hangup.Start(env, conn.tcp.Get(), info[1].As<Napi::Function>());
    Napi::Array fds = Napi::Array::New(env, workers_);
    for (uint32_t w = 0; w < workers_; ++w) fds.Set(w, conn.readers[w].Get());
    Napi::Object out = Napi::Object::New(env);
    out.Set("slot", slot);
    out.Set("fds", fds);
    return out;
  } catch (const SysFailure& failure) {
    Teardown(slot);
    throw SysError(env, failure);
  }
}

int Sockmap::Teardown(uint32_t slot) {
  if (slot >= slots_.size() || !slots_[slot]) return 0;
  Connection& conn = *slots_[slot];
  conn.hangup.Stop();
  int err = 0;
  // ENOENT is expected: the kernel drops a closed socket from a sockmap by itself,
  // and a failed Add stops half way.
  auto note = [&err](int rc) {
    if (rc != 0 && errno != ENOENT && err == 0) err = errno;
  };
  note(bpf::MapDelete(parser_map_.Get(), &slot));
  if (conn.cookie != 0) note(bpf::MapDelete(state_map_.Get(), &conn.cookie));
  for (uint32_t w = 0; w < conn.readers.size(); ++w) {
    const uint32_t key = slot * workers_ + w;
    note(bpf::MapDelete(target_map_.Get(), &key));
  }
  slots_[slot].reset();
  return err;
}

Napi::Value Sockmap::Remove(const Napi::CallbackInfo& info) {
  const int err = Teardown(info[0].As<Napi::Number>().Uint32Value());
  if (err != 0) throw SysError(info.Env(), "bpf(BPF_MAP_DELETE_ELEM)", err);
  return info.Env().Undefined();
}

Napi::Value Sockmap::Framed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
  if (slot >= slots_.size() || !slots_[slot]) throw SysError(env, "sockmap framed (no such connection)", EBADF);
  const Connection& conn = *slots_[slot];
  FrameTally tally;
  try {
    // Received first: every byte counted there is parsed by the time the state says so.
    tally.received = TcpDataReceived(conn.tcp.Get());
    SockmapConnState state{}, scratch{};
    ReadStable(state_map_.Get(), &conn.cookie, &state, &scratch, sizeof state);
    tally.parsed = state.parsed;
    tally.end = state.stream_end;
    tally.refused = state.refused_length;
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
  return ToJs(env, tally);
}

Napi::Value Sockmap::Close(const Napi::CallbackInfo& info) {
  int err = 0;
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const int rc = Teardown(slot);
    if (err == 0) err = rc;
  }
  state_map_.Reset(-1);
  parser_map_.Reset(-1);
  target_map_.Reset(-1);
  if (err != 0) throw SysError(info.Env(), "bpf(BPF_MAP_DELETE_ELEM)", err);
  return info.Env().Undefined();
}

namespace {

/** Whether a SOCKMAP (8-byte values) holds a socket at key: a lookup gives its cookie, or ENOENT. */
bool SockmapHas(int map_fd, uint32_t key) {
  uint64_t cookie = 0;
  if (bpf::MapLookup(map_fd, &key, &cookie) == 0) return true;
  if (errno == ENOENT) return false;
  ThrowErrno("bpf(BPF_MAP_LOOKUP_ELEM, SOCKMAP)");
}

}  // namespace

Napi::Value Sockmap::Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!parser_map_.Valid()) throw SysError(env, "sockmap entries (closed)", EBADF);
  uint32_t connections = 0, targets = 0, states = 0;
  try {
    for (uint32_t slot = 0; slot < high_water_; ++slot) {
      if (SockmapHas(parser_map_.Get(), slot)) ++connections;
      for (uint32_t w = 0; w < workers_; ++w) {
        if (SockmapHas(target_map_.Get(), slot * workers_ + w)) ++targets;
      }
    }
    uint64_t key = 0, next = 0;
    for (const void* at = nullptr; bpf::MapNextKey(state_map_.Get(), at, &next) == 0; at = &key) {
      key = next;
      ++states;
    }
    if (errno != ENOENT) ThrowErrno("bpf(BPF_MAP_GET_NEXT_KEY, parser state)");
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("connections", connections);
  out.Set("targets", targets);
  out.Set("states", states);
  return out;
}

}  // namespace kmux
