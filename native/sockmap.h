// The sockmap data path (JS class Sockmap): a SOCKMAP of TCP connections with
// kmux's stream parser and verdict attached, and a second SOCKMAP of targets.
// Each connection gets one target per worker, a unix stream socketpair whose
// reading end sits in the target map: the verdict spreads the connection's
// frames round-robin over its own targets, so whoever reads a target knows
// which connection a frame came from without any added header.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "hangup_watch.h"
#include "unique_fd.h"

namespace kmux {

class Sockmap : public Napi::ObjectWrap<Sockmap> {
 public:
  static Napi::Function Define(Napi::Env env);

  /** new Sockmap(maxFrameBytes, workers, capacity, targetRcvbufBytes) */
  explicit Sockmap(const Napi::CallbackInfo& info);
  ~Sockmap() override;

 private:
  struct Connection {
    UniqueFd tcp;                   // our duplicate of the caller's TCP fd
    uint64_t cookie = 0;            // SO_COOKIE: the key of its parser state
    std::vector<UniqueFd> readers;  // in the target map, one per worker: frames arrive here
    std::vector<UniqueFd> writers;  // the other ends, kept open so the readers stay connected
    HangupWatch hangup;
  };

  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  /** What the kernel's maps hold: { connections, targets, states }, asked of the kernel, not of slots_. */
  Napi::Value Entries(const Napi::CallbackInfo& info);
  /** framed(slot): the parser's count and the TCP socket's data bytes (frame_tally.h). */
  Napi::Value Framed(const Napi::CallbackInfo& info);
  void Setup(uint32_t slot, Connection& conn);
  /** Takes the connection out of the maps and closes it; the first unexpected errno, or 0. */
  int Teardown(uint32_t slot);

  uint32_t max_frame_;
  uint32_t workers_;
  uint32_t target_rcvbuf_;
  UniqueFd state_map_, parser_map_, target_map_;
  std::vector<std::unique_ptr<Connection>> slots_;  // null: free
  uint32_t high_water_ = 0;  // slots at or above it were never used (slots are taken lowest first)
};

}  // namespace kmux
