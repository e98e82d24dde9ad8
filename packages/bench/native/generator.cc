// The generator's event loop and phases (warm-up, measured window, drain) and its report.
// Connections: connect.cc; requests and replies: traffic.cc.
#include "generator.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "generator_internal.h"
#include "output.h"

using namespace generator_internal;

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
