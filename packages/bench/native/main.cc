// kmux-loadgen: the bench's load generator. It reads a run's spec on stdin (see spec.h),
// drives the server, and reports progress and the result as JSON lines on stdout.
// `kmux-loadgen --histogram` instead records the integers on stdin and prints the
// histogram, so tests can hold its buckets against @kmux/core's.
#include <cstdio>
#include <cstring>

#include "affinity.h"
#include "generator.h"
#include "output.h"
#include "spec.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--histogram") == 0) {
    Histogram histogram(7);
    unsigned long long value;
    while (std::scanf("%llu", &value) == 1) histogram.record(value);
    histogram.writeJson(stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  Spec spec;
  std::string error = readSpec(stdin, spec);
  if (error.empty() && !spec.cpus.empty()) error = pinSelf(spec.cpus);
  if (error.empty() && spec.serverPid > 0 && !spec.serverCpus.empty()) error = pinProcess(spec.serverPid, spec.serverCpus);
  if (!error.empty()) {
    emitFailed(error);
    return 1;
  }
  Generator(spec).run();
  return 0;
}
