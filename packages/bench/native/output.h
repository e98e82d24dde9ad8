// The generator's stdout: one JSON object per line, read by native-load.ts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "histogram.h"

struct ClassResult {
  std::string label;
  uint64_t errors;
  const Histogram* latency;
};

struct ResultLine {
  std::string fatal;
  size_t connections = 0;
  double seconds = 0;
  uint64_t lost = 0;
  /** The generator's CPU use over the measured window, percent of one core. */
  double cpuPercent = 0;
  int64_t maxSendLagUs = 0;
  std::vector<ClassResult> classes;
};

void emitEvent(const char* type);
void emitProgress(const char* phase, double elapsedSeconds, double rate);
void emitFailed(const std::string& message);
void emitResult(const ResultLine& result);
