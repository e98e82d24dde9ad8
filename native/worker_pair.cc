#include "worker_pair.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "byte_order.h"
#include "sys_failure.h"

namespace kmux {

void WorkerPair::Open() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) ThrowErrno("socketpair(AF_UNIX, SOCK_STREAM)");
  Reset();
  io_.Reset(fds[0]);
  worker_.Reset(fds[1]);
}

void WorkerPair::Queue(const uint8_t* frame, size_t len) {
  out_.append(reinterpret_cast<const char*>(frame), len);
  sent_.emplace_back();
  sent_.back().head.assign(reinterpret_cast<const char*>(frame) + 4, std::min(len - 4, kHeadBytes));
}

void WorkerPair::Flush() {
  if (out_.empty() || !io_.Valid()) return;
  for (;;) {
    const ssize_t n = send(io_.Get(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      // The worker's end is gone: those requests are its in-flight ones (the I/O thread fails them).
      out_.clear();
      return;
    }
    out_.erase(0, static_cast<size_t>(n));
    return;
  }
}

WorkerPair::ReadEnd WorkerPair::Read(uint8_t* scratch, size_t size, const OnAnswer& on_answer) {
  for (;;) {
    const ssize_t n = recv(io_.Get(), scratch, size, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadEnd::kDrained;
    if (n <= 0) {
      // The worker's end is closed: the connection is going away, or the worker died.
      return ReadEnd::kClosed;
    }
    const uint8_t* data = scratch;
    size_t len = static_cast<size_t>(n);
    if (!in_.empty()) {
      in_.append(reinterpret_cast<const char*>(data), len);
      data = reinterpret_cast<const uint8_t*>(in_.data());
      len = in_.size();
    }
    size_t used = 0;
    while (len - used >= 8) {
      const uint32_t body = ReadBe32(data + used);
      const size_t record = 8 + (body == kNoReply ? 0 : static_cast<size_t>(body));
      if (len - used < record) break;
      on_answer(ReadBe32(data + used + 4), body == kNoReply ? nullptr : data + used + 8, body == kNoReply ? 0 : body);
      used += record;
    }
    if (data == scratch) in_.assign(reinterpret_cast<const char*>(data + used), len - used);
    else in_.erase(0, used);
    if (static_cast<size_t>(n) < size) return ReadEnd::kDrained;
  }
}

void WorkerPair::CloseIo() {
  io_.Reset(-1);
  out_.clear();
}

bool WorkerPair::Answer(uint32_t index) {
  const uint32_t offset = index - base_;
  if (offset >= sent_.size() || sent_[offset].answered) return false;
  sent_[offset].answered = true;
  std::string().swap(sent_[offset].head);
  while (!sent_.empty() && sent_.front().answered) {
    sent_.pop_front();
    base_++;
  }
  return true;
}

std::vector<std::string> WorkerPair::TakeUnanswered() {
  std::vector<std::string> heads;
  for (Sent& sent : sent_) {
    if (!sent.answered) heads.push_back(std::move(sent.head));
  }
  return heads;
}

uint32_t WorkerPair::unanswered() const {
  return static_cast<uint32_t>(std::count_if(sent_.begin(), sent_.end(), [](const Sent& sent) { return !sent.answered; }));
}

}  // namespace kmux
