// Splits one connection's byte stream into whole frames (4-byte big-endian length + body)
// for the native transport's I/O thread (io_loop.h). A length above maxFrameBytes is refused
// as soon as its header is read, before any of its body is buffered; the bytes of a frame
// not yet whole are kept here, with the time its first bytes came (frameTimeoutMs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kmux {

class FrameSplitter {
 public:
  using OnFrame = std::function<void(const uint8_t* frame, size_t len)>;

  explicit FrameSplitter(uint32_t max_frame) : max_frame_(max_frame) {}

  /**
   * Splits [data, data + len) after the partial frame held, handing each whole frame (header
   * included) to on_frame. 0, or a length above maxFrameBytes: then the rest is not read.
   */
  uint32_t Push(const uint8_t* data, size_t len, uint64_t now_ns, const OnFrame& on_frame);
  /** Forgets the partial frame (a stream that ends inside one never completes it). */
  void Drop();
  /** The partial frame's clock starts again from `now_ns` (the wait was the reader's, not the peer's). */
  void Restart(uint64_t now_ns) {
    if (partial_since_ns_ != 0) partial_since_ns_ = now_ns;
  }

  /** Bytes of the partial frame held. */
  size_t held() const { return partial_.size(); }
  /** When the partial frame's first bytes came; 0 when none is held. */
  uint64_t partial_since_ns() const { return partial_since_ns_; }
  /** Frames whose header was read (mod 2^32). */
  uint32_t parsed() const { return parsed_; }

 private:
  const uint32_t max_frame_;
  std::string partial_;  // a frame not yet whole (its header may be incomplete)
  uint64_t partial_since_ns_ = 0;
  uint32_t parsed_ = 0;
};

}  // namespace kmux
