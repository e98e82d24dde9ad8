// One accepted TCP connection as the native transport's I/O thread (io_loop.h) holds it:
// its frame splitter, the requests waiting for a worker, its stream to each worker, the
// replies not yet on the socket, and how it is ending.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "frame_splitter.h"
#include "tls_records.h"
#include "unique_fd.h"
#include "worker_pair.h"
#include "worker_picker.h"

namespace kmux {

struct IoConnection {
  IoConnection(uint64_t connection_id, uint32_t max_frame) : id(connection_id), splitter(max_frame) {}

  uint64_t id;
  UniqueFd tcp;
  std::vector<WorkerPair> pairs;   // one per worker slot
  FrameSplitter splitter;
  std::array<std::deque<std::string>, kLanes> queued;  // whole frames waiting for a worker, per lane
  uint64_t queued_bytes = 0;
  uint32_t held = 0;               // sent to workers, not answered
  std::string out;                 // reply frames for TCP, from out_sent on
  size_t out_sent = 0;
  uint32_t refused = 0;
  uint32_t tcp_events = 0;
  bool eof = false;                // the peer's FIN was read
  bool ended = false;              // reported (FIN or error): no more reads
  bool failed = false;             // ended by an error: nothing more is written either
  bool dirty = false;              // in the loop's dirty list
  std::array<bool, kLanes> in_ring{};  // in the loop's ring of that lane
  bool starved = false;            // reads stopped for the buffer budget
  bool pushed_back = false;        // shed past its refusal credit: not read until it holds resume_at
  uint64_t resume_at = 0;
  int64_t refusal_credit = -1;     // sheds it may still cost (IoLoop::Shed); -1 before the first
  std::string held_frames;         // whole frames read with the refused one, not yet split off to a worker
  bool in_resumed = false;         // in the loop's resume list
  std::unique_ptr<TlsRecords> tls;  // kTLS connections only
  const char* eof_call = "read";    // how the orderly end came (IoHangup::call)
  bool rx_parked = false;          // kTLS: at a KeyUpdate, until ResumeRead / EndRead
  bool linger = false;             // kTLS: ended at a KeyUpdate it could not follow: FIN, no close_notify
  uint32_t empty_reads = 0;        // kTLS: readable wakeups in a row that gave no record
  bool backoff = false;            // kTLS: reads paused until the next backoff tick
  std::string tx_update;           // kTLS: our KeyUpdate, sent once `out` up to tx_mark is on TCP
  size_t tx_mark = 0;
  bool tx_pending = false;
  bool tx_parked = false;          // kTLS: sent our KeyUpdate, until ResumeWrite
  uint64_t key_update_records = 0; // kTLS: our own KeyUpdate falls due after this many records
  uint64_t key_update_bytes = 0;   // ... or bytes sent under one key (0: never)
  uint64_t records_under_key = 0;
  uint64_t bytes_under_key = 0;
  bool tx_due = false;             // kTLS: kTxDue reported, until our KeyUpdate is sent

  /** Frames waiting for a worker, in both lanes. */
  size_t waiting() const { return queued[kAnyLane].size() + queued[kSlowLane].size(); }
};

}  // namespace kmux
