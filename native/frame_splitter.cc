#include "frame_splitter.h"

#include <algorithm>

#include "byte_order.h"

namespace kmux {
namespace {

/** A partial frame's buffer above this goes back once the frame is whole; a smaller one is kept for the next. */
constexpr size_t kKeptPartialBytes = 256 * 1024;

}  // namespace

uint32_t FrameSplitter::Push(const uint8_t* data, size_t len, uint64_t now_ns, const OnFrame& on_frame) {
  while (len > 0) {
    if (partial_.empty()) {
      while (len >= 4) {
        const uint32_t body = ReadBe32(data);
        if (body > max_frame_) return body;
        parsed_++;
        if (len - 4 < body) break;
        on_frame(data, 4 + static_cast<size_t>(body));
        data += 4 + static_cast<size_t>(body);
        len -= 4 + static_cast<size_t>(body);
      }
      if (len == 0) return 0;
      partial_.assign(reinterpret_cast<const char*>(data), len);
      partial_since_ns_ = now_ns;
      return 0;
    }
    size_t have = partial_.size();
    if (have < 4) {
      const size_t take = std::min(4 - have, len);
      partial_.append(reinterpret_cast<const char*>(data), take);
      data += take;
      len -= take;
      have += take;
      if (have < 4) return 0;
      const uint32_t body = ReadBe32(reinterpret_cast<const uint8_t*>(partial_.data()));
      if (body > max_frame_) return body;
      parsed_++;
    }
    const size_t whole = 4 + static_cast<size_t>(ReadBe32(reinterpret_cast<const uint8_t*>(partial_.data())));
    const size_t take = std::min(whole - have, len);
    partial_.append(reinterpret_cast<const char*>(data), take);
    data += take;
    len -= take;
    if (partial_.size() < whole) return 0;
    on_frame(reinterpret_cast<const uint8_t*>(partial_.data()), whole);
    if (partial_.capacity() > kKeptPartialBytes) std::string().swap(partial_);
    else partial_.clear();
    partial_since_ns_ = 0;
  }
  return 0;
}

void FrameSplitter::Drop() {
  std::string().swap(partial_);
  partial_since_ns_ = 0;
}

}  // namespace kmux
