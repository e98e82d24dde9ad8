#include "bpf_programs.h"

#include <cerrno>
#include <cstddef>
#include <string>
#include <vector>

#include "bpf_asm.h"
#include "bpf_syscall.h"
#include "sys_failure.h"

namespace kmux {
namespace {

using namespace bpf;  // NOLINT: registers R0..R10 read best unqualified here

/** Loads a program; a rejection carries the end of the verifier's log in the call name. */
UniqueFd Load(bpf_prog_type type, const std::vector<bpf_insn>& code, const char* what) {
  UniqueFd fd(ProgLoad(type, code.data(), static_cast<uint32_t>(code.size())));
  if (fd.Valid()) return fd;
  const int err = errno;
  std::vector<char> log(1 << 16);
  if (ProgLoad(type, code.data(), static_cast<uint32_t>(code.size()), log.data(), static_cast<uint32_t>(log.size())) >= 0) {
    throw SysFailure{std::string("bpf(BPF_PROG_LOAD, ") + what + ") failed once, then loaded", err};
  }
  std::string text(log.data());
  if (text.size() > 600) text = "..." + text.substr(text.size() - 600);
  throw SysFailure{std::string("bpf(BPF_PROG_LOAD, ") + what + ")" + (text.empty() ? "" : "; verifier: " + text), err};
}

/** r0 = bpf_skb_load_bytes_relative(skb=r6, offset=r2, to=r10-8, len, from the network header). */
void LoadFromNetHeader(Asm& a, int32_t len) {
  a.MovReg(R1, R6);
  a.StackPtr(R3, -8);
  a.MovImm(R4, len);
  a.MovImm(R5, BPF_HDR_START_NET);
  a.Call(BPF_FUNC_skb_load_bytes_relative);
}

}  // namespace

KcmParser LoadKcmParser(uint32_t max_frame_bytes) {
  UniqueFd map(MapCreate(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(KcmParserState), 1));
  if (!map.Valid()) ThrowErrno("bpf(BPF_MAP_CREATE, ARRAY, KCM parser state)");

  Asm a;
  const auto need_more = a.NewLabel(), too_big = a.NewLabel(), lost = a.NewLabel(), ipv4 = a.NewLabel(),
             have_start = a.NewLabel();
  a.MovReg(R6, R1);
  // r7 = offset of th->seq from the network header: IHL * 4 + 4 (IPv4), 40 + 4 (IPv6).
  a.MovImm(R2, 0);
  LoadFromNetHeader(a, 1);
  a.JumpImm(BPF_JNE, R0, 0, lost);
  a.Load(BPF_B, R7, R10, -8);
  a.MovReg(R8, R7);
  a.AluImm(BPF_RSH, R8, 4);
  a.AluImm(BPF_AND, R7, 0xf);
  a.AluImm(BPF_LSH, R7, 2);
  a.JumpImm(BPF_JNE, R8, 6, ipv4);
  a.MovImm(R7, 40);
  a.Bind(ipv4);
  a.AluImm(BPF_ADD, R7, 4);
  // r8 = th->seq: the sequence number of this skb's first byte.
  a.MovReg(R2, R7);
  LoadFromNetHeader(a, 4);
  a.JumpImm(BPF_JNE, R0, 0, lost);
  a.Load(BPF_W, R8, R10, -8);
  a.Be32(R8);
  // r9 = &state[0]
  a.StoreImm(BPF_W, R10, -16, 0);
  a.LoadMap(R1, map.Get());
  a.StackPtr(R2, -16);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpImm(BPF_JEQ, R0, 0, lost);
  a.MovReg(R9, R0);
  // The first call sees the first unread byte: that is where the first message starts.
  a.Load(BPF_W, R1, R9, 4);
  a.JumpImm(BPF_JNE, R1, 0, have_start);
  a.Store(BPF_W, R9, 0, R8);
  a.Store(BPF_W, R9, 8, R8);
  a.StoreImm(BPF_W, R9, 4, 1);
  a.Bind(have_start);
  // r2 = next_seq - seq (mod 2^32): the message's offset in this skb.
  a.Load(BPF_W, R2, R9, 0);
  a.Alu32Reg(BPF_SUB, R2, R8);
  a.Load(BPF_W, R1, R6, offsetof(__sk_buff, len));
  a.JumpReg(BPF_JGE, R2, R1, lost);
  a.MovReg(R1, R6);
  a.StackPtr(R3, -8);
  a.MovImm(R4, 4);
  a.Call(BPF_FUNC_skb_load_bytes);
  a.JumpImm(BPF_JNE, R0, 0, need_more);  // fewer than 4 header bytes so far
  a.Load(BPF_W, R0, R10, -8);
  a.Be32(R0);
  a.JumpImm(BPF_JGT, R0, static_cast<int32_t>(max_frame_bytes), too_big);
  a.AluImm(BPF_ADD, R0, 4);
  // Parsed once per message: count it, and advance next_seq past it now.
  a.Load(BPF_W, R1, R9, 12);
  a.AluImm(BPF_ADD, R1, 1);
  a.Store(BPF_W, R9, 12, R1);
  a.Load(BPF_W, R1, R9, 0);
  a.Alu32Reg(BPF_ADD, R1, R0);
  a.Store(BPF_W, R9, 0, R1);
  a.Exit();
  a.Bind(need_more);
  a.MovImm(R0, 0);
  a.Exit();
  a.Bind(too_big);
  a.Store(BPF_W, R9, offsetof(KcmParserState, refused_length), R0);
  a.StoreImm(BPF_W, R9, offsetof(KcmParserState, refused), EMSGSIZE);
  a.MovImm(R0, -EMSGSIZE);
  a.Exit();
  a.Bind(lost);
  a.MovImm(R0, -EPROTO);
  a.Exit();
  UniqueFd program = Load(BPF_PROG_TYPE_SOCKET_FILTER, a.Finish(), "SOCKET_FILTER, KCM parser");
  return KcmParser{std::move(program), std::move(map)};
}

UniqueFd LoadSockmapParser(int state_map_fd, uint32_t max_frame_bytes) {
  constexpr int16_t kOff = offsetof(SockmapConnState, off), kEnd = offsetof(SockmapConnState, end),
                    kExtra = offsetof(SockmapConnState, extra), kMode = offsetof(SockmapConnState, mode),
                    kParsed = offsetof(SockmapConnState, parsed), kStreamEnd = offsetof(SockmapConnState, stream_end);
  Asm a;
  const auto pending = a.NewLabel(), have_off = a.NewLabel(), need_more = a.NewLabel(), too_big = a.NewLabel(),
             lost = a.NewLabel();
  a.MovReg(R6, R1);
  a.Call(BPF_FUNC_get_socket_cookie);
  a.Store(BPF_DW, R10, -8, R0);
  a.LoadMap(R1, state_map_fd);
  a.StackPtr(R2, -8);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpImm(BPF_JEQ, R0, 0, lost);
  a.MovReg(R7, R0);
  a.Load(BPF_W, R8, R7, kMode);
  a.JumpImm(BPF_JEQ, R8, 1, pending);
  // r8 = extra ? skb->len - extra : 0
  a.Load(BPF_W, R9, R7, kExtra);
  a.MovImm(R8, 0);
  a.JumpImm(BPF_JEQ, R9, 0, have_off);
  a.Load(BPF_W, R8, R6, offsetof(__sk_buff, len));
  a.JumpReg(BPF_JGT, R9, R8, lost);
  a.AluReg(BPF_SUB, R8, R9);
  a.Jump(have_off);
  a.Bind(pending);
  a.Load(BPF_W, R8, R7, kOff);
  a.Bind(have_off);
  a.Store(BPF_W, R7, kOff, R8);
  a.MovReg(R1, R6);
  a.MovReg(R2, R8);
  a.StackPtr(R3, -16);
  a.MovImm(R4, 4);
  a.Call(BPF_FUNC_skb_load_bytes);
  a.JumpImm(BPF_JNE, R0, 0, need_more);
  a.Load(BPF_W, R0, R10, -16);
  a.Be32(R0);
  a.JumpImm(BPF_JGT, R0, static_cast<int32_t>(max_frame_bytes), too_big);
  a.AluImm(BPF_ADD, R0, 4);
  a.MovReg(R1, R8);
  a.AluReg(BPF_ADD, R1, R0);
  a.Store(BPF_W, R7, kEnd, R1);
  a.StoreImm(BPF_W, R7, kMode, 2);
  // strparser asks once per message for its length: count it (frame_tally.h).
  a.Load(BPF_W, R1, R7, kParsed);
  a.AluImm(BPF_ADD, R1, 1);
  a.Store(BPF_W, R7, kParsed, R1);
  a.Load(BPF_W, R1, R7, kStreamEnd);
  a.Alu32Reg(BPF_ADD, R1, R0);
  a.Store(BPF_W, R7, kStreamEnd, R1);
  a.Exit();
  a.Bind(need_more);
  a.StoreImm(BPF_W, R7, kMode, 1);
  a.MovImm(R0, 0);
  a.Exit();
  a.Bind(too_big);
  a.Store(BPF_W, R7, offsetof(SockmapConnState, refused_length), R0);
  a.MovImm(R0, -EMSGSIZE);
  a.Exit();
  a.Bind(lost);
  a.MovImm(R0, -EPROTO);
  a.Exit();
  return Load(BPF_PROG_TYPE_SK_SKB, a.Finish(), "SK_SKB, stream parser");
}

UniqueFd LoadSockmapVerdict(int state_map_fd, int target_map_fd) {
  constexpr int16_t kEnd = offsetof(SockmapConnState, end), kExtra = offsetof(SockmapConnState, extra),
                    kMode = offsetof(SockmapConnState, mode), kBase = offsetof(SockmapConnState, base),
                    kTargets = offsetof(SockmapConnState, targets), kNext = offsetof(SockmapConnState, next);
  Asm a;
  const auto drop = a.NewLabel();
  a.MovReg(R6, R1);
  a.Call(BPF_FUNC_get_socket_cookie);
  a.Store(BPF_DW, R10, -8, R0);
  a.LoadMap(R1, state_map_fd);
  a.StackPtr(R2, -8);
  a.Call(BPF_FUNC_map_lookup_elem);
  a.JumpImm(BPF_JEQ, R0, 0, drop);
  a.MovReg(R7, R0);
  // extra = skb->len - end; the parser's next call starts from there.
  a.Load(BPF_W, R1, R6, offsetof(__sk_buff, len));
  a.Load(BPF_W, R2, R7, kEnd);
  a.AluReg(BPF_SUB, R1, R2);
  a.Store(BPF_W, R7, kExtra, R1);
  a.StoreImm(BPF_W, R7, kMode, 0);
  // r3 = base + next++ % targets (strparser runs one socket's programs serially: no atomics needed)
  a.Load(BPF_W, R2, R7, kTargets);
  a.JumpImm(BPF_JEQ, R2, 0, drop);
  a.Load(BPF_W, R3, R7, kNext);
  a.MovReg(R1, R3);
  a.AluImm(BPF_ADD, R1, 1);
  a.Store(BPF_W, R7, kNext, R1);
  a.AluReg(BPF_MOD, R3, R2);
  a.Load(BPF_W, R1, R7, kBase);
  a.AluReg(BPF_ADD, R3, R1);
  a.MovReg(R1, R6);
  a.LoadMap(R2, target_map_fd);
  a.MovImm(R4, BPF_F_INGRESS);
  a.Call(BPF_FUNC_sk_redirect_map);
  a.Exit();
  a.Bind(drop);
  a.MovImm(R0, SK_DROP);
  a.Exit();
  return Load(BPF_PROG_TYPE_SK_SKB, a.Finish(), "SK_SKB, verdict");
}

}  // namespace kmux
