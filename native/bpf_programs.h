// kmux's BPF framing programs, hand-assembled (no clang, no libbpf). Frames are
// a 4-byte big-endian payload length, then the payload; every parser returns
// 4 + length, or a negative errno that makes strparser abort the stream:
// -EMSGSIZE for a length above max_frame_bytes, -EPROTO when it lost track.
//
// The offset pitfall (DESIGN.md, "Kernel facts"): strparser hands a parser the
// whole skb, and the message starts at strp_msg(skb)->offset, which __sk_buff
// does not expose; reading the length at offset 0 misframes every frame that
// does not begin an skb. Each parser below finds the message start another way.
#pragma once

#include <cstdint>

#include "unique_fd.h"

namespace kmux {

/**
 * KCM parser (BPF_PROG_TYPE_SOCKET_FILTER, for SIOCKCMATTACH). It keeps the TCP
 * sequence number where the next message starts in a private 1-entry array map
 * and reads the length at (next_seq - th->seq): th->seq is the sequence number
 * of the skb's first byte, read from the TCP header. One program per attached
 * TCP socket; the map lives as long as the program does.
 * Assumes nothing was read from the TCP socket before the attach, and an
 * IPv4 header or an IPv6 header without extension headers. Also counts the
 * messages it parsed, for an exact end (frame_tally.h).
 */
struct KcmParser {
  UniqueFd program;
  UniqueFd state;  // the 1-entry array map holding a KcmParserState
};
KcmParser LoadKcmParser(uint32_t max_frame_bytes);

/** The KCM parser's state (frame_tally.h says what parsed and the offsets are for). */
struct KcmParserState {
  uint32_t next_seq;   // TCP sequence number where the next message starts
  uint32_t valid;      // next_seq and start_seq are set (the first call sets them)
  uint32_t start_seq;  // sequence number of the stream's first byte: end = next_seq - start_seq
  uint32_t parsed;     // messages whose length the parser returned
  uint32_t refused;    // EMSGSIZE once it refused a length: the socket's own error may be overwritten
  uint32_t refused_length;  // the length it refused (frame_tally.h)
};

/**
 * Per-connection state of the sockmap programs, in a BPF_MAP_TYPE_HASH keyed
 * by the TCP socket's cookie (SO_COOKIE). User space creates the entry (with
 * base and targets) before it inserts the socket; the programs keep the rest.
 */
struct SockmapConnState {
  uint32_t off;      // where the current message starts in the skb the parser sees
  uint32_t end;      // off + message length, set by the parser
  uint32_t extra;    // bytes after the last message's end in its skb, set by the verdict
  uint32_t mode;     // 0: derive off from extra; 1: header incomplete at off; 2: parsed, verdict next
  uint32_t base;     // first index of this connection's targets in the target map
  uint32_t targets;  // how many targets it has (one per worker)
  uint32_t next;     // round-robin counter over them
  uint32_t parsed;   // frames whose length the parser returned (frame_tally.h)
  uint32_t stream_end;  // stream offset (mod 2^32) where the last parsed frame ends
  uint32_t refused_length;  // a length the parser refused (frame_tally.h), else 0
};

/**
 * sockmap stream parser (BPF_PROG_TYPE_SK_SKB). Offset fix: the verdict records
 * how many bytes follow the message it just saw (skb->len - end); strparser then
 * hands the parser the same skb again for the next message, which starts at
 * skb->len - extra (or at 0 in a fresh skb, extra == 0). Verified against
 * coalesced, split and random writes in packages/native/test/.
 */
UniqueFd LoadSockmapParser(int state_map_fd, uint32_t max_frame_bytes);

/**
 * sockmap verdict (BPF_PROG_TYPE_SK_SKB): records extra for the parser, then
 * redirects the frame (ingress) to target_map[base + next++ % targets], that is
 * round-robin per frame over the connection's own targets. A connection
 * without state is dropped (SK_DROP).
 */
UniqueFd LoadSockmapVerdict(int state_map_fd, int target_map_fd);

}  // namespace kmux
