#include "spec.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace {

bool readLine(FILE* in, std::string& line) {
  line.clear();
  int c;
  while ((c = std::fgetc(in)) != EOF && c != '\n') line.push_back(static_cast<char>(c));
  return c != EOF || !line.empty();
}

}  // namespace

std::string readSpec(FILE* in, Spec& spec) {
  std::string line;
  while (readLine(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "end") {
      if (spec.templates.empty()) return "no request templates";
      if (spec.schedule.empty()) return "no schedule";
      for (uint16_t t : spec.schedule) {
        if (t >= spec.templates.size()) return "schedule names template " + std::to_string(t);
      }
      if (spec.port.empty()) return "no port";
      return "";
    }
    if (key == "template") {
      Template t;
      size_t length = 0;
      if (!(words >> t.label >> t.idAt >> length)) return "bad template line: " + line;
      t.frame.resize(length);
      if (std::fread(t.frame.data(), 1, length, in) != length) return "template " + t.label + " is truncated";
      size_t room = spec.protocol == Protocol::kThrift ? 4 : 5;
      if (t.idAt + room > length) return "template " + t.label + " has its id outside the frame";
      spec.templates.push_back(std::move(t));
      continue;
    }
    if (key == "schedule") {
      unsigned t;
      while (words >> t) spec.schedule.push_back(static_cast<uint16_t>(t));
      continue;
    }
    std::string value;
    words >> value;
    if (key == "protocol") {
      if (value != "thrift" && value != "protobuf") return "unknown protocol " + value;
      spec.protocol = value == "thrift" ? Protocol::kThrift : Protocol::kProtobuf;
    } else if (key == "host") {
      spec.host = value;
    } else if (key == "port") {
      spec.port = value;
    } else if (key == "connections") {
      spec.connections = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (key == "depth") {
      spec.depth = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (key == "rate") {
      spec.rate = std::strtod(value.c_str(), nullptr);
    } else if (key == "idle") {
      spec.idle = value == "1";
    } else if (key == "warmup") {
      spec.warmupSeconds = std::strtod(value.c_str(), nullptr);
    } else if (key == "duration") {
      spec.durationSeconds = std::strtod(value.c_str(), nullptr);
    } else if (key == "drain") {
      spec.drainSeconds = std::strtod(value.c_str(), nullptr);
    } else if (key == "cpus") {
      spec.cpus = value;
    } else if (key == "server-pid") {
      spec.serverPid = std::atoi(value.c_str());
    } else if (key == "server-cpus") {
      spec.serverCpus = value;
    } else {
      return "unknown spec key " + key;
    }
  }
  return "spec ended without \"end\"";
}
