// The generator's requests and replies: sending what is due, writing, reading, matching
// each reply to its request by id.
#include "generator.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "generator_internal.h"
#include "output.h"
#include "wire.h"

using namespace generator_internal;

/**
 * Open loop: request k is due at start + k / rate and goes on connection k mod C. Its latency
 * counts from that intended time, so a server that stalls is charged for every request it
 * kept waiting, not only the one it was answering.
 */
void Generator::sendDue(int64_t now) {
  while (nextIntendedNs_ <= now && nextIntendedNs_ < measureEnd_) {
    Connection& c = connections_[nextRequest_ % connections_.size()];
    uint16_t cls = spec_.schedule[nextRequest_ % spec_.schedule.size()];
    bool measured = nextIntendedNs_ >= measureStart_;
    if (!enqueue(c, cls, nextIntendedNs_, measured)) return;
    if (measured) maxSendLagNs_ = std::max(maxSendLagNs_, now - nextIntendedNs_);
    c.touched = true;
    nextRequest_++;
    nextIntendedNs_ = start_ + static_cast<int64_t>(std::llround(nextRequest_ * (kSecond / spec_.rate)));
  }
  for (Connection& c : connections_) {
    if (!c.touched) continue;
    c.touched = false;
    flush(c);
  }
}

/** Appends one request to the connection's output, its id patched in. False after a fatal error. */
bool Generator::enqueue(Connection& c, uint16_t cls, int64_t sentNs, bool measured) {
  if (c.freeSlots.empty()) {
    fail("more than " + std::to_string(c.slots.size()) + " requests in flight on connection " + std::to_string(c.index));
    return false;
  }
  uint32_t slot = c.freeSlots.back();
  c.freeSlots.pop_back();
  uint32_t generationBits = kSlotSpaceBits - c.slotBits;
  uint32_t generation = c.generation++ & ((1u << generationBits) - 1);
  uint32_t id = (c.index << kSlotSpaceBits) | (generation << c.slotBits) | slot;
  const Template& t = spec_.templates[cls];
  size_t at = c.out.size();
  c.out.insert(c.out.end(), t.frame.begin(), t.frame.end());
  patchId(spec_.protocol, c.out.data() + at + t.idAt, id);
  c.slots[slot] = Slot{sentNs, id, cls, true, measured};
  outstanding_++;
  if (!spec_.idle && spec_.rate <= 0) c.cursor = (c.cursor + 1) % spec_.schedule.size();
  return true;
}

void Generator::flush(Connection& c) {
  while (c.outOffset < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.outOffset, c.out.size() - c.outOffset, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return setWriteInterest(c, true);
    if (n < 0) return fail("connection " + std::to_string(c.index) + ": " + std::strerror(errno));
    c.outOffset += n;
  }
  c.out.clear();
  c.outOffset = 0;
  setWriteInterest(c, false);
}

void Generator::setWriteInterest(Connection& c, bool armed) {
  if (c.writeArmed == armed) return;
  c.writeArmed = armed;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | (armed ? uint32_t{EPOLLOUT} : 0u);
  event.data.u32 = c.index;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
}

void Generator::onReadable(Connection& c) {
  bool readSome = false;
  for (;;) {
    if (c.inCapacity - c.inLength < kInitialReadBytes / 2) {
      size_t capacity = std::max(kInitialReadBytes, c.inCapacity * 2);
      std::unique_ptr<uint8_t[]> grown(new uint8_t[capacity]);
      if (c.inLength > 0) std::memcpy(grown.get(), c.in.get(), c.inLength);
      c.in = std::move(grown);
      c.inCapacity = capacity;
    }
    size_t space = c.inCapacity - c.inLength;
    ssize_t n = recv(c.fd, c.in.get() + c.inLength, space, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      std::string why = n == 0 ? "closed by the server" : std::strerror(errno);
      return fail("connection " + std::to_string(c.index) + " " + why);
    }
    readSome = true;
    c.inLength += n;
    int64_t now = nowNs();
    size_t offset = 0;
    while (c.inLength - offset >= 4 && fatal_.empty()) {
      const uint8_t* head = c.in.get() + offset;
      size_t length = (size_t{head[0]} << 24) | (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3];
      if (length > kMaxFrameBytes) return fail("reply frame of " + std::to_string(length) + " bytes");
      if (c.inLength - offset - 4 < length) break;
      onFrame(c, head + 4, length, now);
      offset += 4 + length;
    }
    if (offset > 0) {
      std::memmove(c.in.get(), c.in.get() + offset, c.inLength - offset);
      c.inLength -= offset;
    }
    if (static_cast<size_t>(n) < space) break;  // a short read drained the socket
  }
  // Closed loop: the requests that replace this batch of replies go out in one write.
  if (readSome && fatal_.empty() && !c.out.empty()) flush(c);
}

void Generator::onFrame(Connection& c, const uint8_t* body, size_t length, int64_t now) {
  Reply reply;
  if (const char* why = parseReply(spec_.protocol, body, length, reply)) {
    return fail("unreadable reply on connection " + std::to_string(c.index) + ": " + why);
  }
  uint32_t slot = reply.id & ((1u << c.slotBits) - 1);
  Slot& s = c.slots[slot];
  if (reply.id >> kSlotSpaceBits != c.index || !s.used || s.id != reply.id) {
    return fail("reply id " + std::to_string(reply.id) + " on connection " + std::to_string(c.index) +
                " matches no request in flight");
  }
  s.used = false;
  c.freeSlots.push_back(slot);
  outstanding_--;
  replies_++;
  if (s.measured) {
    ClassStats& stats = stats_[s.cls];
    stats.latency.record(static_cast<uint64_t>(now - s.sentNs) / 1000);
    if (reply.failed) stats.errors++;
  }
  if (spec_.rate <= 0 && sending()) {
    enqueue(c, spec_.schedule[c.cursor], now, now >= measureStart_ && now < measureEnd_);
  }
}
