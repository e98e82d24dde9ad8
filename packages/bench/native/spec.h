// What one run does, as the Node side (native-load.ts) writes it on stdin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wire.h"

struct Template {
  std::string label;
  /** Offset of the request id inside `frame` (4 bytes BE for Thrift, a 5-byte varint for protobuf). */
  uint32_t idAt;
  std::vector<uint8_t> frame;
};

struct Spec {
  Protocol protocol = Protocol::kThrift;
  std::string host = "127.0.0.1";
  std::string port;
  uint32_t connections = 1;
  /** Closed loop: requests in flight per connection. */
  uint32_t depth = 1;
  /** Open loop when > 0: requests per second over all connections, sent on schedule. */
  double rate = 0;
  /** Idle mode: hold `connections` open without traffic, then send one request on each. */
  bool idle = false;
  double warmupSeconds = 0;
  double durationSeconds = 1;
  double drainSeconds = 5;
  /** CPU lists ("1", "0-2,5") for sched_setaffinity, or empty to leave alone. */
  std::string cpus;
  int serverPid = 0;
  std::string serverCpus;
  std::vector<Template> templates;
  /** The order connections cycle through the templates (request-mix.ts builds it). */
  std::vector<uint16_t> schedule;
};

/**
 * Reads "key value" lines up to "end". A "template <label> <idAt> <length>" line
 * is followed by exactly `length` bytes of frame. Returns an error message, or "" when valid.
 */
std::string readSpec(FILE* in, Spec& spec);
