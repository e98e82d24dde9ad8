#include "output.h"

#include <cstdio>

namespace {

void writeString(const std::string& text) {
  std::fputc('"', stdout);
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      std::fputc('\\', stdout);
      std::fputc(c, stdout);
    } else if (c < 0x20) {
      std::fprintf(stdout, "\\u%04x", c);
    } else {
      std::fputc(c, stdout);
    }
  }
  std::fputc('"', stdout);
}

void endLine() {
  std::fputs("\n", stdout);
  std::fflush(stdout);
}

}  // namespace

void emitEvent(const char* type) {
  std::printf("{\"type\":\"%s\"}", type);
  endLine();
}

void emitProgress(const char* phase, double elapsedSeconds, double rate) {
  std::printf("{\"type\":\"progress\",\"phase\":\"%s\",\"elapsedSeconds\":%.3f,\"recentRate\":%.1f}", phase,
              elapsedSeconds, rate);
  endLine();
}

void emitFailed(const std::string& message) {
  std::fputs("{\"type\":\"failed\",\"message\":", stdout);
  writeString(message);
  std::fputc('}', stdout);
  endLine();
}

void emitResult(const ResultLine& r) {
  std::printf("{\"type\":\"result\",\"connections\":%zu,\"seconds\":%.6f,\"lost\":%llu,\"cpuPercent\":%.2f,"
              "\"maxSendLagUs\":%lld,\"fatal\":",
              r.connections, r.seconds, static_cast<unsigned long long>(r.lost), r.cpuPercent,
              static_cast<long long>(r.maxSendLagUs));
  if (r.fatal.empty()) {
    std::fputs("null", stdout);
  } else {
    writeString(r.fatal);
  }
  std::fputs(",\"classes\":[", stdout);
  for (size_t i = 0; i < r.classes.size(); i++) {
    std::fputs(i == 0 ? "{\"label\":" : ",{\"label\":", stdout);
    writeString(r.classes[i].label);
    std::printf(",\"errors\":%llu,\"latency\":", static_cast<unsigned long long>(r.classes[i].errors));
    r.classes[i].latency->writeJson(stdout);
    std::fputc('}', stdout);
  }
  std::fputs("]}", stdout);
  endLine();
}
