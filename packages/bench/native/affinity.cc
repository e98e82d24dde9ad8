#include "affinity.h"

#include <dirent.h>
#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace {

bool parseCpuList(const std::string& list, cpu_set_t& set) {
  CPU_ZERO(&set);
  std::istringstream parts(list);
  std::string part;
  bool any = false;
  while (std::getline(parts, part, ',')) {
    char* end = nullptr;
    long first = std::strtol(part.c_str(), &end, 10);
    long last = first;
    if (*end == '-') last = std::strtol(end + 1, &end, 10);
    if (*end != '\0' || first < 0 || last < first || last >= CPU_SETSIZE) return false;
    for (long cpu = first; cpu <= last; cpu++) CPU_SET(cpu, &set);
    any = true;
  }
  return any;
}

std::string pinTask(int tid, const cpu_set_t& set) {
  if (sched_setaffinity(tid, sizeof set, &set) == 0) return "";
  return "sched_setaffinity(" + std::to_string(tid) + "): " + std::strerror(errno);
}

}  // namespace

std::string pinSelf(const std::string& list) {
  cpu_set_t set;
  if (!parseCpuList(list, set)) return "bad CPU list " + list;
  return pinTask(0, set);
}

std::string pinProcess(int pid, const std::string& list) {
  cpu_set_t set;
  if (!parseCpuList(list, set)) return "bad CPU list " + list;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return dir + ": " + std::strerror(errno);
  std::string error;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::string failed = pinTask(std::atoi(entry->d_name), set);
    // A thread may exit between readdir and the call; only the first real failure counts.
    if (!failed.empty() && errno != ESRCH && error.empty()) error = failed;
  }
  closedir(tasks);
  return error;
}
