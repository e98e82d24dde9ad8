// What the generator's source files share: the request id layout, limits, and clocks.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

namespace generator_internal {

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

inline int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kSecond + ts.tv_nsec;
}

inline double cpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

inline uint32_t bitsFor(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count) bits++;
  return bits;
}

}  // namespace generator_internal
