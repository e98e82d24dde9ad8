// How many frames a kernel-framed connection carried, for a hangup that must not
// lose the last requests (the peer writes, then closes at once). The hangup
// notice can overtake both the stream parser (strparser may run later, from a
// workqueue) and the delivery of parsed frames to the workers' sockets (sockmap
// redirects through a backlog work item). So the BPF parsers count: `parsed`,
// the frames whose length they read, and `end`, the stream offset where the last
// of them ends (both mod 2^32). With `received`, the TCP socket's data bytes,
// user space knows when the count is final, and the workers read until they got
// that many (packages/core: KernelTransport, scheduler/kernel-connection.ts).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace kmux {

struct FrameTally {
  uint32_t parsed = 0;
  uint32_t end = 0;
  /** Data bytes the TCP socket received (the FIN excluded), or -1 when no FIN came (reset, or still open). */
  int64_t received = -1;
  /** A length the parser refused (above maxFrameBytes), or 0: its first bytes tell an unframed client apart. */
  uint32_t refused = 0;
};

/**
 * Copies a BPF map value that the programs may be updating: reads until two
 * reads agree, so that no half-updated value is used (the counters only grow,
 * so two equal reads bracket a moment at which the value was whole).
 */
void ReadStable(int map_fd, const void* key, void* value, void* scratch, size_t size);

/** TCP_INFO's bytes_received minus the FIN's sequence number, or -1 when the socket saw no FIN. */
int64_t TcpDataReceived(int tcp_fd);

Napi::Object ToJs(Napi::Env env, const FrameTally& tally);

}  // namespace kmux
