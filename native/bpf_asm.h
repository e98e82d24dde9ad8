// A tiny eBPF assembler with forward labels, so the framing programs in
// bpf_programs.cc read as code rather than as hand-counted jump offsets.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace kmux::bpf {

enum Reg : uint8_t { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

class Asm {
 public:
  using Label = int;

  Label NewLabel() {
    labels_.push_back(-1);
    return static_cast<Label>(labels_.size() - 1);
  }
  void Bind(Label label) { labels_[label] = static_cast<int>(code_.size()); }

  void MovImm(Reg dst, int32_t imm) { Emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void MovReg(Reg dst, Reg src) { Emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void AluImm(uint8_t op, Reg dst, int32_t imm) { Emit(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
  void AluReg(uint8_t op, Reg dst, Reg src) { Emit(BPF_ALU64 | op | BPF_X, dst, src, 0, 0); }
  /** 32-bit ALU: the result wraps modulo 2^32 (TCP sequence arithmetic) and is zero-extended. */
  void Alu32Reg(uint8_t op, Reg dst, Reg src) { Emit(BPF_ALU | op | BPF_X, dst, src, 0, 0); }
  /** Network (big-endian) 32-bit value to host order, upper half zeroed. */
  void Be32(Reg dst) { Emit(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 32); }
  void Load(uint8_t size, Reg dst, Reg src, int16_t off) { Emit(BPF_LDX | BPF_MEM | size, dst, src, off, 0); }
  void Store(uint8_t size, Reg dst, int16_t off, Reg src) { Emit(BPF_STX | BPF_MEM | size, dst, src, off, 0); }
  void StoreImm(uint8_t size, Reg dst, int16_t off, int32_t imm) { Emit(BPF_ST | BPF_MEM | size, dst, 0, off, imm); }
  void Call(int32_t helper) { Emit(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
  void Exit() { Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
  /** dst = pointer to the map whose fd is given (a two-slot ld_imm64). */
  void LoadMap(Reg dst, int map_fd) {
    Emit(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
    Emit(0, 0, 0, 0, 0);
  }
  /** r = r10 + off: a pointer into the program's stack for a helper argument. */
  void StackPtr(Reg dst, int16_t off) {
    MovReg(dst, R10);
    AluImm(BPF_ADD, dst, off);
  }

  void JumpImm(uint8_t op, Reg reg, int32_t imm, Label to) { EmitJump(BPF_JMP | op | BPF_K, reg, 0, imm, to); }
  void JumpReg(uint8_t op, Reg reg, Reg src, Label to) { EmitJump(BPF_JMP | op | BPF_X, reg, src, 0, to); }
  void Jump(Label to) { EmitJump(BPF_JMP | BPF_JA, 0, 0, 0, to); }

  /** The instructions with every jump resolved; throws on a label never bound (a bug here, not a kernel fact). */
  std::vector<bpf_insn> Finish() {
    for (const Fixup& fix : fixups_) {
      if (labels_[fix.label] < 0) throw std::logic_error("bpf assembler: unbound label");
      code_[fix.at].off = static_cast<int16_t>(labels_[fix.label] - fix.at - 1);
    }
    return code_;
  }

 private:
  struct Fixup {
    int at;
    Label label;
  };

  void Emit(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    code_.push_back(bpf_insn{code, dst, src, off, imm});
  }
  void EmitJump(uint8_t code, uint8_t dst, uint8_t src, int32_t imm, Label to) {
    fixups_.push_back({static_cast<int>(code_.size()), to});
    Emit(code, dst, src, 0, imm);
  }

  std::vector<bpf_insn> code_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

}  // namespace kmux::bpf
