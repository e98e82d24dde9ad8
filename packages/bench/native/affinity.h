// Pinning the generator and the server to separate cores (sched_setaffinity).
#pragma once

#include <string>

/** Pins this process to the CPUs in `list` ("1", "0-2,5"). Returns an error message or "". */
std::string pinSelf(const std::string& list);

/** Pins every thread of process `pid` (threads it starts later inherit it). Error message or "". */
std::string pinProcess(int pid, const std::string& list);
