// One connection's stream to one worker on the native transport (io_loop.h): a unix
// SOCK_STREAM socketpair. The I/O thread writes whole request frames to its end (`io`); the
// worker reads its end like a sockmap target and answers each request with one record,
// [u32 length][u32 index][body], in any order: index counts the requests sent on the pair
// from 0, length kNoReply means "answered, no reply" (oneway). Every request sent is
// remembered, with its first bytes, until it is answered, so that those a dead worker took
// can be named and failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace kmux {

class WorkerPair {
 public:
  static constexpr uint32_t kNoReply = 0xFFFFFFFF;
  /** Bytes of each request kept until it is answered: enough for the codec to read its head. */
  static constexpr size_t kHeadBytes = 1024;
  /** An answer record: the request's index, and its reply body (null for kNoReply). */
  using OnAnswer = std::function<void(uint32_t index, const uint8_t* reply, uint32_t len)>;
  enum class ReadEnd { kDrained, kClosed };

  /** A new socketpair; the previous one, and all it held, is dropped. Throws SysFailure. */
  void Open();
  /** Drops the socketpair and all it held. */
  void Reset() { *this = WorkerPair(); }

  bool open() const { return io_.Valid(); }
  int io_fd() const { return io_.Get(); }
  int worker_fd() const { return worker_.Get(); }
  /** Whether request bytes wait for the worker's end to take them. */
  bool has_output() const { return !out_.empty(); }
  /** Bytes of an answer record read only in part. */
  size_t partial_answer_bytes() const { return in_.size(); }

  /** Queues a whole request frame (header included) and remembers it as sent. */
  void Queue(const uint8_t* frame, size_t len);
  /** Writes what is queued, as much as the worker's end takes; a dead end drops it. */
  void Flush();
  /** Reads answer records until the worker's end has no more, each to on_answer, using scratch. */
  ReadEnd Read(uint8_t* scratch, size_t size, const OnAnswer& on_answer);
  /** After kClosed, once epoll no longer watches it: closes the I/O end and drops the queued requests. */
  void CloseIo();
  /** Marks request `index` answered; false if it was not waiting for an answer. */
  bool Answer(uint32_t index);
  /** The first bytes of every request not answered, oldest first; they are forgotten here. */
  std::vector<std::string> TakeUnanswered();
  /** Requests sent and not answered. */
  uint32_t unanswered() const;

  uint32_t events = 0;  // what the I/O thread's epoll watches on io_fd()
  /** The worker let go of the connection (a drain): it reads no more, so nothing more goes to it. */
  bool detached = false;

 private:
  struct Sent {
    bool answered = false;
    std::string head;
  };

  UniqueFd io_, worker_;
  std::string out_;        // request frames not yet taken by the stream
  std::string in_;         // a partial answer record
  std::deque<Sent> sent_;  // requests sent, by index from base_
  uint32_t base_ = 0;
};

}  // namespace kmux
