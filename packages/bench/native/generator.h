// The load generator's event loop: one thread, epoll, every connection non-blocking.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "histogram.h"
#include "spec.h"

class Generator {
 public:
  explicit Generator(const Spec& spec);
  ~Generator();
  /** Connects, runs warm-up, measured window and drain, and prints the result line. */
  void run();

 private:
  struct Slot {
    int64_t sentNs;
    uint32_t id;
    uint16_t cls;
    bool used;
    bool measured;
  };

  struct Connection {
    int fd = -1;
    uint32_t index = 0;
    std::unique_ptr<uint8_t[]> in;
    size_t inCapacity = 0;
    size_t inLength = 0;
    std::vector<uint8_t> out;
    size_t outOffset = 0;
    bool writeArmed = false;
    bool touched = false;
    /** Requests in flight, found by the id's low bits; `generation` tells reuses apart. */
    std::vector<Slot> slots;
    std::vector<uint32_t> freeSlots;
    uint32_t slotBits = 0;
    uint32_t generation = 0;
    uint32_t cursor = 0;
  };

  struct ClassStats {
    Histogram latency{7};
    uint64_t errors = 0;
  };

  enum class Phase { kWarmup, kMeasure, kDrain };

  void connectAll();
  void settleConnections(uint32_t from, uint32_t to);
  void loop();
  void dispatch(const struct epoll_event* events, int count);
  void startPhase(Phase phase, int64_t now);
  bool sending() const { return phase_ != Phase::kDrain && !spec_.idle; }
  void sendDue(int64_t now);
  bool enqueue(Connection& c, uint16_t cls, int64_t sentNs, bool measured);
  void flush(Connection& c);
  void onReadable(Connection& c);
  void onFrame(Connection& c, const uint8_t* body, size_t length, int64_t now);
  void setWriteInterest(Connection& c, bool armed);
  void progress(int64_t now);
  void fail(const std::string& why);
  void report();

  const Spec& spec_;
  int epoll_ = -1;
  int timer_ = -1;
  int64_t armedDeadline_ = -1;
  std::vector<Connection> connections_;
  std::vector<ClassStats> stats_;
  std::string fatal_;
  Phase phase_ = Phase::kWarmup;
  int64_t start_ = 0;
  int64_t measureStart_ = 0;
  int64_t measureEnd_ = 0;
  int64_t drainStart_ = 0;
  int64_t drainEnd_ = 0;
  int64_t finished_ = 0;
  double cpuAtMeasureStart_ = 0;
  double cpuMeasured_ = 0;
  /** Open loop: index and intended send time of the next request. */
  uint64_t nextRequest_ = 0;
  int64_t nextIntendedNs_ = 0;
  int64_t maxSendLagNs_ = 0;
  uint64_t outstanding_ = 0;
  uint64_t replies_ = 0;
  uint64_t repliesAtProgress_ = 0;
  int64_t lastProgressNs_ = 0;
  int64_t nextProgressNs_ = 0;
};
