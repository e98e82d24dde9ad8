#include "generator.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "output.h"

namespace {

// A request id is connection << kSlotSpaceBits | generation << slotBits | slot, so a reply
// names its connection (a reply on the wrong one is a misroute) and its slot directly.
constexpr uint32_t kConnectionBits = 14;
constexpr uint32_t kSlotSpaceBits = 32 - kConnectionBits;
constexpr uint32_t kMaxConnections = 1u << kConnectionBits;
/** Open loop: requests one connection may have in flight before the run is called off. */
constexpr uint32_t kOpenLoopSlotBits = 14;
constexpr size_t kMaxFrameBytes = 64u << 20;
constexpr size_t kInitialReadBytes = 16u << 10;
constexpr int64_t kSecond = 1'000'000'000;
constexpr uint32_t kTimerKey = UINT32_MAX;
/** Idle mode connects this many, then waits for each to answer a request, and so on. */
constexpr uint32_t kConnectBatch = 256;
constexpr int64_t kSettleTimeoutNs = 10 * kSecond;

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kSecond + ts.tv_nsec;
}

double cpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

uint32_t bitsFor(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count) bits++;
  return bits;
}

}  // namespace

Generator::Generator(const Spec& spec) : spec_(spec), stats_(spec.templates.size()) {
  // Ten thousand idle connections need more descriptors than the usual soft limit.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u32 = kTimerKey;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &event);
}

Generator::~Generator() {
  for (Connection& c : connections_) {
    if (c.fd >= 0) close(c.fd);
  }
  close(timer_);
  close(epoll_);
}

void Generator::run() {
  if (spec_.connections == 0 || spec_.connections > kMaxConnections) {
    fail("connections must be 1.." + std::to_string(kMaxConnections));
  } else if (spec_.rate <= 0 && !spec_.idle && (spec_.depth == 0 || spec_.depth > (1u << 16))) {
    fail("depth must be 1..65536");
  } else {
    connectAll();
  }
  if (fatal_.empty()) loop();
  finished_ = nowNs();
  report();
}

void Generator::connectAll() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* address = nullptr;
  int resolved = getaddrinfo(spec_.host.c_str(), spec_.port.c_str(), &hints, &address);
  if (resolved != 0) return fail(spec_.host + ": " + gai_strerror(resolved));
  uint32_t slotBits = spec_.rate > 0 ? kOpenLoopSlotBits : bitsFor(spec_.idle ? 1 : spec_.depth);
  connections_.resize(spec_.connections);
  int64_t started = nowNs();
  int64_t nextProgress = started + kSecond;
  uint32_t settled = 0;
  for (uint32_t i = 0; i < spec_.connections && fatal_.empty(); i++) {
    Connection& c = connections_[i];
    c.index = i;
    c.slotBits = slotBits;
    c.slots.assign(size_t{1} << slotBits, Slot{});
    for (uint32_t s = c.slots.size(); s-- > 0;) c.freeSlots.push_back(s);
    c.cursor = i % spec_.schedule.size();  // connections start at different points of the mix
    c.fd = socket(address->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // Blocking connect: simple, and it paces the connects to the server's accept queue.
    if (c.fd < 0 || connect(c.fd, address->ai_addr, address->ai_addrlen) != 0) {
      fail("connection " + std::to_string(i) + ": " + std::strerror(errno));
      break;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u32 = i;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event);
    if (spec_.idle && (i + 1 - settled == kConnectBatch || i + 1 == spec_.connections)) {
      settleConnections(settled, i + 1);
      settled = i + 1;
    }
    int64_t now = nowNs();
    if (now >= nextProgress) {
      emitProgress("connect", (now - started) / 1e9, i + 1);
      nextProgress = now + kSecond;
    }
  }
  freeaddrinfo(address);
}

/**
 * Sends one request on each of connections [from, to) and waits for the replies. A listen
 * backlog that overflows drops SYNs, and each drop costs a connect a one-second retry;
 * waiting for a batch to be served keeps the server's accept queue short.
 */
void Generator::settleConnections(uint32_t from, uint32_t to) {
  int64_t now = nowNs();
  for (uint32_t i = from; i < to && fatal_.empty(); i++) {
    enqueue(connections_[i], spec_.schedule[0], now, false);
    flush(connections_[i]);
  }
  epoll_event events[256];
  while (fatal_.empty() && outstanding_ > 0) {
    if (nowNs() - now > kSettleTimeoutNs) return fail("the server left new connections unanswered for 10 s");
    int ready = epoll_wait(epoll_, events, 256, 100);
    if (ready < 0 && errno != EINTR) return fail(std::string("epoll_wait: ") + std::strerror(errno));
    dispatch(events, ready);
  }
}

void Generator::loop() {
  start_ = nowNs();
  measureStart_ = start_ + static_cast<int64_t>(spec_.warmupSeconds * kSecond);
  measureEnd_ = measureStart_ + static_cast<int64_t>(spec_.durationSeconds * kSecond);
  lastProgressNs_ = start_;
  nextProgressNs_ = start_ + kSecond;
  nextIntendedNs_ = start_;
  if (spec_.rate <= 0 && !spec_.idle) {
    for (Connection& c : connections_) {
      for (uint32_t d = 0; d < spec_.depth; d++) enqueue(c, spec_.schedule[c.cursor], start_, start_ >= measureStart_);
      flush(c);
    }
  }
  epoll_event events[256];
  while (fatal_.empty()) {
    int64_t now = nowNs();
    // Before the phase changes: requests due up to the window's end still go out.
    if (spec_.rate > 0 && sending()) sendDue(now);
    if (phase_ == Phase::kWarmup && now >= measureStart_) startPhase(Phase::kMeasure, now);
    if (phase_ == Phase::kMeasure && now >= measureEnd_) startPhase(Phase::kDrain, now);
    if (phase_ == Phase::kDrain && (outstanding_ == 0 || now >= drainEnd_)) break;
    if (now >= nextProgressNs_) progress(now);

    int64_t deadline = std::min(nextProgressNs_, phase_ == Phase::kWarmup ? measureStart_
                                                 : phase_ == Phase::kMeasure ? measureEnd_
                                                                             : drainEnd_);
    if (spec_.rate > 0 && sending()) deadline = std::min(deadline, nextIntendedNs_);
    int timeout = -1;
    if (deadline <= nowNs()) {
      timeout = 0;
    } else if (deadline != armedDeadline_) {
      itimerspec at{};
      at.it_value.tv_sec = deadline / kSecond;
      at.it_value.tv_nsec = deadline % kSecond;
      timerfd_settime(timer_, TFD_TIMER_ABSTIME, &at, nullptr);
      armedDeadline_ = deadline;
    }
    int ready = epoll_wait(epoll_, events, 256, timeout);
    if (ready < 0 && errno != EINTR) return fail(std::string("epoll_wait: ") + std::strerror(errno));
    dispatch(events, ready);
  }
}

void Generator::dispatch(const epoll_event* events, int count) {
  for (int e = 0; e < count && fatal_.empty(); e++) {
    uint32_t key = events[e].data.u32;
    if (key == kTimerKey) {
      uint64_t expirations;
      while (read(timer_, &expirations, sizeof expirations) > 0) {
      }
      armedDeadline_ = -1;
      continue;
    }
    Connection& c = connections_[key];
    if (events[e].events & EPOLLOUT) flush(c);
    if (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) onReadable(c);
  }
}

void Generator::startPhase(Phase phase, int64_t now) {
  phase_ = phase;
  if (phase == Phase::kMeasure) {
    emitEvent("measure-start");
    cpuAtMeasureStart_ = cpuSeconds();
  } else {
    cpuMeasured_ = cpuSeconds() - cpuAtMeasureStart_;
    emitEvent("measure-end");
    drainStart_ = now;
    drainEnd_ = now + static_cast<int64_t>(spec_.drainSeconds * kSecond);
    if (spec_.idle) {
      // The idle connections prove they are still served: one request each.
      for (Connection& c : connections_) {
        enqueue(c, spec_.schedule[0], now, true);
        flush(c);
      }
    }
  }
  lastProgressNs_ = now;
  repliesAtProgress_ = replies_;
  nextProgressNs_ = now + kSecond;
}

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

void Generator::progress(int64_t now) {
  double rate = (replies_ - repliesAtProgress_) * 1e9 / std::max<int64_t>(1, now - lastProgressNs_);
  int64_t phaseStart = phase_ == Phase::kWarmup ? start_ : phase_ == Phase::kMeasure ? measureStart_ : drainStart_;
  const char* name = phase_ == Phase::kWarmup ? "warmup" : phase_ == Phase::kMeasure ? "measure" : "drain";
  emitProgress(name, (now - phaseStart) / 1e9, rate);
  repliesAtProgress_ = replies_;
  lastProgressNs_ = now;
  nextProgressNs_ = now + kSecond;
}

void Generator::fail(const std::string& why) {
  if (fatal_.empty()) fatal_ = why;
}

void Generator::report() {
  ResultLine result;
  result.fatal = fatal_;
  result.connections = connections_.size();
  // Idle mode measures the one request per connection sent at the end, over the drain.
  int64_t windowNs = spec_.idle ? finished_ - drainStart_ : measureEnd_ - measureStart_;
  result.seconds = std::max<int64_t>(windowNs, 1) / 1e9;
  result.lost = fatal_.empty() ? outstanding_ : 0;
  result.cpuPercent = cpuMeasured_ * 1e11 / std::max<int64_t>(measureEnd_ - measureStart_, 1);
  result.maxSendLagUs = maxSendLagNs_ / 1000;
  for (size_t i = 0; i < stats_.size(); i++) {
    result.classes.push_back(ClassResult{spec_.templates[i].label, stats_[i].errors, &stats_[i].latency});
  }
  emitResult(result);
}
