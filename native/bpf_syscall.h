// Raw bpf(2) calls. kmux assembles its few BPF programs by hand, so it needs
// neither libbpf nor clang at build time; these wrappers are all it uses.
#pragma once

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace kmux::bpf {

inline int Sys(int cmd, union bpf_attr* attr) {
  return static_cast<int>(syscall(__NR_bpf, cmd, attr, sizeof(*attr)));
}

inline constexpr bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return bpf_insn{code, dst, src, off, imm};
}
inline constexpr bpf_insn MovImm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
inline constexpr bpf_insn LoadU32(uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
inline constexpr bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

/** Returns the map fd, or -1 with errno set. */
inline int MapCreate(bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_type = type;
  attr.key_size = key_size;
  attr.value_size = value_size;
  attr.max_entries = max_entries;
  return Sys(BPF_MAP_CREATE, &attr);
}

/**
 * Returns the program fd, or -1 with errno set. With a log buffer the
 * verifier explains a rejection there (log_size must then be >= 128).
 */
inline int ProgLoad(bpf_prog_type type, const bpf_insn* insns, uint32_t count, char* log = nullptr,
                    uint32_t log_size = 0) {
  static const char kLicense[] = "GPL";
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = type;
  attr.insns = reinterpret_cast<uintptr_t>(insns);
  attr.insn_cnt = count;
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  if (log != nullptr) {
    attr.log_buf = reinterpret_cast<uintptr_t>(log);
    attr.log_size = log_size;
    attr.log_level = 1;
  }
  return Sys(BPF_PROG_LOAD, &attr);
}

/** Attaches prog to target (a sockmap for sk_skb programs); 0 or -1 with errno set. */
inline int ProgAttach(int prog_fd, int target_fd, bpf_attach_type type) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.target_fd = target_fd;
  attr.attach_bpf_fd = prog_fd;
  attr.attach_type = type;
  return Sys(BPF_PROG_ATTACH, &attr);
}

/** 0 or -1 with errno set. */
inline int MapUpdate(int map_fd, const void* key, const void* value, uint64_t flags) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = map_fd;
  attr.key = reinterpret_cast<uintptr_t>(key);
  attr.value = reinterpret_cast<uintptr_t>(value);
  attr.flags = flags;
  return Sys(BPF_MAP_UPDATE_ELEM, &attr);
}

/** 0 or -1 with errno set. */
inline int MapDelete(int map_fd, const void* key) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = map_fd;
  attr.key = reinterpret_cast<uintptr_t>(key);
  return Sys(BPF_MAP_DELETE_ELEM, &attr);
}

/** 0 or -1 with errno set. */
inline int MapLookup(int map_fd, const void* key, void* value) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = map_fd;
  attr.key = reinterpret_cast<uintptr_t>(key);
  attr.value = reinterpret_cast<uintptr_t>(value);
  return Sys(BPF_MAP_LOOKUP_ELEM, &attr);
}

/** The key after `key` (the first one for nullptr) into next_key; 0, or -1 with errno (ENOENT: no more). */
inline int MapNextKey(int map_fd, const void* key, void* next_key) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = map_fd;
  attr.key = reinterpret_cast<uintptr_t>(key);
  attr.next_key = reinterpret_cast<uintptr_t>(next_key);
  return Sys(BPF_MAP_GET_NEXT_KEY, &attr);
}

}  // namespace kmux::bpf
