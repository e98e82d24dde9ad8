// Socket options the kernel data paths depend on; each throws SysFailure
// naming the call that failed.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>

#include <climits>
#include <cstdint>
#include <string>

#include "sys_failure.h"
#include "unique_fd.h"

#ifndef SOL_TLS
#define SOL_TLS 282  // not in every libc's headers; the value is fixed by the kernel ABI
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace kmux {

/** A close-on-exec duplicate, so the caller's fd can be closed independently. */
inline UniqueFd DupFd(int fd) {
  UniqueFd dup(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup.Valid()) ThrowErrno("fcntl(F_DUPFD_CLOEXEC)");
  return dup;
}

inline int GetIntOpt(int fd, int level, int name, const char* call) {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) ThrowErrno(call);
  return value;
}

/**
 * Makes sk_rcvbuf at least min_bytes. strparser (KCM and sockmap alike) aborts
 * with EMSGSIZE on a message larger than the socket's sk_rcvbuf, and a message
 * near that size stalls, because its skbs stay charged to the socket until the
 * message is complete. SO_RCVBUFFORCE passes rmem_max (needs CAP_NET_ADMIN);
 * without it SO_RCVBUF gets what rmem_max allows, and the check says so.
 * The kernel doubles the value set (bookkeeping overhead), so half is asked for.
 */
inline void EnsureRcvbuf(int fd, uint64_t min_bytes) {
  if (min_bytes > INT_MAX) min_bytes = INT_MAX;
  if (static_cast<uint64_t>(GetIntOpt(fd, SOL_SOCKET, SO_RCVBUF, "getsockopt(SO_RCVBUF)")) >= min_bytes) return;
  const int ask = static_cast<int>((min_bytes + 1) / 2);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &ask, sizeof ask) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &ask, sizeof ask) != 0) {
    ThrowErrno("setsockopt(SO_RCVBUF, " + std::to_string(ask) + ")");
  }
  const int got = GetIntOpt(fd, SOL_SOCKET, SO_RCVBUF, "getsockopt(SO_RCVBUF)");
  if (static_cast<uint64_t>(got) < min_bytes) {
    throw SysFailure{"setsockopt(SO_RCVBUF): got " + std::to_string(got) + " bytes of the " + std::to_string(min_bytes) +
                         " needed (raise net.core.rmem_max, or grant CAP_NET_ADMIN for SO_RCVBUFFORCE)",
                     ENOBUFS};
  }
}

}  // namespace kmux
