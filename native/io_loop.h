// The native transport's I/O thread (JS class NativeMux, native_mux.cc): it owns
// accepted TCP connections, so no request or reply crosses the JS main thread.
//
// Per connection and worker there is a unix SOCK_STREAM socketpair: the I/O
// thread writes whole request frames (4-byte big-endian length + body) to the
// worker's end, which the worker reads with a MessageWatcher exactly as it reads
// a sockmap target, and reads the worker's answers back, one record per request
// in any order: [u32 length][u32 index][body], where index counts the requests
// sent on that pair from 0 and length 0xFFFFFFFF means "answered, no reply"
// (oneway). The I/O thread writes each reply whole to TCP, batched per wake.
//
// The thread splits frames with the limits of the other transports: a length
// above maxFrameBytes ends the connection before any of it is buffered, a
// partial frame older than frameTimeoutMs ends it, and the bytes it holds for
// all connections stay near maxBufferedBytes (reads stop past it). Replies a
// client does not read end its connection past maxPendingWriteBytes (ENOBUFS).
//
// Dispatch (the user-space dispatcher's policy): a frame goes to an idle worker; a busy
// one takes more only while it answered something in the last busyWorkerGraceUs (its current call
// is short), its estimated backlog stays within workerBacklogUs (worker_picker.h) and it holds
// fewer than workerQueueDepth; otherwise frames wait here,
// round robin across connections, for the first worker that frees up. Calls of slowMethods
// (slow_methods.h) go only to an idle worker among the first slowWorkers and wait in a lane of
// their own, so fast calls always find the other workers free of them. Waiting
// frames count against maxInFlight and maxInFlightPerConnection. A frame is shed
// (TakeShed: the main thread answers it "overloaded") past its connection's limit,
// or past the server's when its connection holds at least a fair share of it
// (maxInFlight / connections holding requests): so a flood sheds its own excess
// and a connection that holds little is still queued and served in turn. Shedding costs
// too, so a connection may be shed at most kRefusalsPerServed times per request answered
// (after a first allowance of that many times its limit; server/push-back.ts in
// packages/core, the same rule); past that it is pushed back into TCP: its socket is not
// polled for reading until half of what it held has been answered, and the frames already
// read wait in order (held_frames: at most one read, counted in maxBufferedBytes). Knowing
// every request it sent and which were answered, it can also say which requests
// a dead worker took with it (TakeWorker), so only those fail.
//
// kTLS: a connection added with `tls` has TLS_RX (and TX) set. It is read with recvmsg and the
// record-type cmsg (tls_records.h): data records are framed as above, close_notify ends the
// stream like a FIN, and a TLS 1.3 KeyUpdate parks reading (and the peer's update_requested,
// writing at the next reply boundary) until the main thread has set the next key
// (ResumeRead, KeyUpdateTx, ResumeWrite) or chosen to end the connection (EndRead); past the
// records or bytes allowed under one key it asks the main thread for our KeyUpdate (kTxDue). A kTLS
// socket is read until EAGAIN, not to a short read: recvmsg stops where the record type
// changes, and a KeyUpdate the kernel decrypted there keeps the socket from polling readable.
//
// Its parts, one object a file: io_connection.h (a connection's state), frame_splitter.h
// (framing), worker_pair.h (a connection's socketpair to one worker and its answer records),
// worker_picker.h (which worker takes the next frame).
//
// Threading: one mutex. The I/O thread holds it except in epoll_wait; the main
// thread's calls take it, so they wait at most one round of event handling.
#pragma once

#include <sys/types.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "io_connection.h"
#include "slow_methods.h"
#include "unique_fd.h"
#include "worker_picker.h"

namespace kmux {

struct IoConfig {
  uint32_t workers;
  uint32_t max_frame;
  uint64_t frame_timeout_ms;
  uint64_t max_buffered;
  uint32_t queue_depth;
  uint32_t max_in_flight;
  uint32_t max_in_flight_per_connection;
  uint64_t max_pending_write;
  uint64_t share_ns;  // busyWorkerGraceUs: a busy worker takes more only if it answered this recently
  uint64_t backlog_ns;  // workerBacklogUs: ...and only while its estimated backlog stays within this
  const int32_t* gc_pauses;  // per worker, 1 while its heap is in a GC pause (WorkerClocks); or null
  uint32_t slow_workers;     // slowWorkers: the first slots, which alone run slow-lane calls
  SlowMethods slow_methods;  // slowMethods, as requests name them on the wire
};

/** A kTLS connection's TLS version, and when it starts a KeyUpdate of its own (TLS 1.3; 0: never). */
struct IoTls {
  bool tls13;
  uint64_t key_update_records;
  uint64_t key_update_bytes;
};

/**
 * A connection ended: `err` 0 is the peer's orderly end (after every frame it sent went to a
 * worker; `call` says how: "read" a FIN, on kTLS "close_notify", "eof" a FIN without one,
 * "key_update" an EndRead). Or (`kind`) a notice: a kTLS KeyUpdate step, or frames to shed.
 */
struct IoHangup {
  enum class Kind { kNone /* an end */, kKeyUpdate, kKeyUpdateRequested, kTxDue, kTxParked, kShed /* TakeShed has more */ };
  uint64_t id;
  int err;
  std::string call;
  Kind kind = Kind::kNone;
};

/** What a dead worker held of one connection: the first bytes of each request body, oldest first. */
struct LostRequests {
  uint64_t id;
  std::vector<std::string> heads;
};

struct IoCounts {
  uint32_t parsed = 0;  // frames whose header was read (mod 2^32)
  uint32_t refused = 0; // the length above maxFrameBytes that ended the connection, or 0
  uint64_t unsent = 0;  // reply bytes not yet on the TCP socket, here or in the pairs
};

class IoLoop {
 public:
  /** `notify` runs on the I/O thread whenever TakeHangups has something new. Throws SysFailure. */
  IoLoop(const IoConfig& config, std::function<void()> notify);
  ~IoLoop();
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  /**
   * Takes over an unread TCP socket (duplicates tcp_fd); fills `worker_fds`, one per slot. With
   * `tls` the socket has kTLS RX and TX set. Throws SysFailure.
   */
  uint64_t Add(int tcp_fd, std::vector<int>* worker_fds, const IoTls* tls);
  /** Closes the connection's TCP duplicate and pairs; the workers must have let go of their ends. */
  void Remove(uint64_t id);
  /** The connection's current worker ends (a dead worker's is replaced by TakeWorker). */
  std::vector<int> WorkerFds(uint64_t id);
  IoCounts Counts(uint64_t id);
  /** Queues a whole reply frame (length prefix included) for the connection's TCP socket. */
  void Reply(uint64_t id, std::string frame);
  /**
   * Worker `slot` died: nothing more goes to it until SetAlive, every connection's pair for it
   * is replaced (what it half read or half wrote is gone), and the requests it held, read or
   * not, are returned, to be failed.
   */
  std::vector<LostRequests> TakeWorker(uint32_t slot);
  /**
   * Worker `slot` let go of connection `id` (a drain): its answers so far are read, nothing more
   * goes to its pair, and the heads of the requests it will never read are returned, to refuse.
   */
  std::vector<std::string> Detached(uint64_t id, uint32_t slot);
  void SetAlive(uint32_t slot);
  std::vector<IoHangup> TakeHangups();
  /** Frames shed over the in-flight limits since the last call: the heads, per connection, to answer "overloaded". */
  std::vector<LostRequests> TakeShed();
  /** kTLS: after a kKeyUpdate event, the next TLS_RX key is set: read on. */
  void ResumeRead(uint64_t id);
  /** kTLS: after a kKeyUpdate event, the key cannot be followed: what was read is answered, then the connection ends ("key_update"). */
  void EndRead(uint64_t id);
  /** kTLS: sends `message` (a KeyUpdate) after the replies queued so far, then parks writing (event kTxParked). */
  void KeyUpdateTx(uint64_t id, std::string message);
  /** kTLS: after kTxParked, the next TLS_TX key is set: write on. */
  void ResumeWrite(uint64_t id);
  /** Frames waiting for a worker, all connections. */
  uint64_t Queued();
  /** Joins the thread and closes everything; idempotent. */
  void Stop();

 private:
  using Connection = IoConnection;

  void Run();
  void HandleTcp(Connection& c, uint32_t events);
  void ReadTcp(Connection& c);
  /** A kTLS control record; false once reading stops. */
  bool Control(Connection& c, uint8_t type, const uint8_t* data, size_t len);
  /** Stops reading at the peer's orderly end: a partial frame is dropped. */
  void Eof(Connection& c, const char* call);
  /** kTLS: a partial record keeps the socket readable with nothing to read: pause reads for a tick. */
  void BackOff(Connection& c);
  void Event(Connection& c, IoHangup::Kind kind);
  void Wake();
  /** Splits [data, data + len) into frames after the partial one; false once the connection ended. */
  bool Split(Connection& c, const uint8_t* data, size_t len);
  /** Ends the connection for a length above maxFrameBytes. */
  void Refuse(Connection& c, uint32_t length);
  void Frame(Connection& c, const uint8_t* frame, size_t len);
  void Commit(Connection& c, uint32_t slot, const uint8_t* frame, size_t len);
  /** Over a limit: the frame is shed (its head goes to the main thread, TakeShed). */
  bool OverLimit(const Connection& c);
  void Shed(Connection& c, const uint8_t* frame, size_t len);
  /** The frame's head goes to the main thread to be answered unrun (TakeShed), without pushback. */
  void Refuse(Connection& c, const uint8_t* frame, size_t len);
  /** Half of what a pushed-back connection held is answered: resume it (Run, after the events). */
  void MaybeResume(Connection& c);
  /** The sheds a connection may cost before any of its requests is answered, and at most ever. */
  int64_t RefusalAllowance() const;
  void Resume();
  void Drain();
  void HandlePair(Connection& c, uint32_t slot, uint32_t events);
  void ReadAnswers(Connection& c, uint32_t slot);
  void Answered(Connection& c, uint32_t slot, uint32_t index);
  void FlushPair(Connection& c, uint32_t slot);
  void FlushTcp(Connection& c);
  /** kTLS: counts a send under the current key; past the limits our KeyUpdate is due (kTxDue). */
  void CountSent(Connection& c, size_t bytes);
  void Sweep();
  void End(Connection& c, int err, const char* call);
  void Watch(int fd, uint64_t key, uint32_t* current, uint32_t wanted);
  void UpdateTcp(Connection& c);
  void UpdatePair(Connection& c, uint32_t slot);
  void OpenPair(Connection& c, uint32_t slot);
  void ClosePair(WorkerPair& pair);
  void MarkDirty(Connection& c);
  bool Starving() const { return buffered_ >= config_.max_buffered; }
  /** The connection's TCP socket is to be read (nothing stops it). */
  static bool Reading(const Connection& c) { return !c.ended && !c.eof && !c.failed && !c.starved && !c.rx_parked && !c.backoff && !c.pushed_back; }
  void Feed();
  /** Takes the ids queued in `pending` and visits each connection still open (removed ones are dropped). */
  template <typename Visit>
  void ForEachPending(std::vector<uint64_t>& pending, Visit visit) {
    std::vector<uint64_t> ids;
    ids.swap(pending);
    for (uint64_t id : ids) {
      auto it = connections_.find(id);
      if (it != connections_.end()) visit(*it->second);
    }
  }

  const IoConfig config_;
  const std::function<void()> notify_;
  UniqueFd epoll_, wake_;
  std::thread thread_;
  std::mutex mutex_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  uint64_t now_ns_ = 0;
  uint64_t next_sweep_ns_ = 0;
  uint64_t buffered_ = 0;        // partial and queued request bytes, all connections
  uint64_t queued_ = 0;          // frames waiting for a worker, all connections
  uint64_t held_ = 0;            // frames sent to workers and not answered, all connections
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  WorkerPicker workers_;
  std::array<std::deque<uint64_t>, kLanes> rings_;  // connections with queued frames, per lane, served in turn
  std::vector<uint64_t> dirty_;  // connections with pair or TCP output to flush this round
  std::vector<uint64_t> starved_;
  std::vector<uint64_t> resumed_;  // pushed-back connections to read again this round
  std::vector<uint64_t> backoff_;  // kTLS connections whose reads pause until the next tick
  std::vector<uint64_t> reread_;   // kTLS connections to read next round without a poll event (ReadTcp, ResumeRead)
  std::unordered_map<uint64_t, std::vector<std::string>> shed_;  // heads to answer "overloaded"
  uint64_t fair_share_at_ns_ = 1;  // when fair_share_ was last counted (once per round, only under overload)
  uint64_t fair_share_ = 0;
  std::vector<IoHangup> hangups_;
  std::vector<uint8_t> scratch_;
};

}  // namespace kmux
