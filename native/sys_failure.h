// A failed system call as a C++ exception: setup code in kcm_mux.cc,
// sockmap.cc and bpf_programs.cc throws it at the first failing call, UniqueFd
// closes whatever was opened so far, and the JS boundary turns it into a
// SysError (errors.h) naming the call and the errno.
#pragma once

#include <cerrno>
#include <string>

namespace kmux {

struct SysFailure {
  std::string call;  // e.g. "ioctl(SIOCKCMATTACH)"
  int err;           // errno
};

/** Throws SysFailure with the current errno. */
[[noreturn]] inline void ThrowErrno(const std::string& call) { throw SysFailure{call, errno}; }

}  // namespace kmux
