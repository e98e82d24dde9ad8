// Log-linear latency histogram with exactly the bucket layout of @kmux/core's Histogram
// (packages/core/src/stats/histogram.ts): values below 2^bits get a bucket each, each
// higher power of two is split into 2^bits buckets. The generator ships bucket counts,
// and the Node side merges them into a core Histogram, so percentiles are computed by
// one piece of code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

class Histogram {
 public:
  static constexpr int kMaxMagnitude = 30;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << (kMaxMagnitude + 1)) - 1;

  explicit Histogram(int bits) : bits_(bits), sub_(1u << bits), counts_((kMaxMagnitude + 2 - bits) * (1u << bits)) {}

  void record(uint64_t value) {
    uint64_t v = std::min(value, kMaxValue);
    counts_[bucketOf(v)]++;
    total_++;
    sum_ += v;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  uint64_t count() const { return total_; }

  /** {"total":..,"sum":..,"min":..,"max":..,"buckets":[[index,count],...]}, nonzero buckets only. */
  void writeJson(FILE* out) const {
    std::fprintf(out, "{\"total\":%llu,\"sum\":%llu,\"min\":%llu,\"max\":%llu,\"buckets\":[",
                 ull(total_), ull(sum_), ull(total_ ? min_ : 0), ull(max_));
    bool first = true;
    for (size_t i = 0; i < counts_.size(); i++) {
      if (counts_[i] == 0) continue;
      std::fprintf(out, "%s[%zu,%llu]", first ? "" : ",", i, ull(counts_[i]));
      first = false;
    }
    std::fputs("]}", out);
  }

 private:
  static unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

  size_t bucketOf(uint64_t v) const {
    if (v < sub_) return static_cast<size_t>(v);
    int shift = 63 - __builtin_clzll(v) - bits_;
    return static_cast<size_t>(shift + 1) * sub_ + ((v >> shift) & (sub_ - 1));
  }

  int bits_;
  uint64_t sub_;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};
