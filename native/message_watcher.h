// Reads whole messages from one fd on the loop of the Node environment that
// created it (main thread or a worker thread: fds are process-wide, so a worker
// can watch an fd the main thread set up). On each wakeup it reads until EAGAIN
// or until a batch is full and hands JS the batch in ONE call: one Buffer with
// the messages back to back, and a Uint32Array of count + 1 offsets.
//
// How a message is found depends on the socket type (SO_TYPE):
//   SOCK_SEQPACKET (KCM) and SOCK_DGRAM: one recvmsg per message, with room
//     for 4 + maxFrameBytes every time. Measured on 6.1: after a partial read
//     of a KCM SEQPACKET message the next recvmsg returns bytes past that
//     message's end (a 150,010-byte message read as 131,072 + 65,536), and
//     DGRAM drops the rest by design (kcm_recvmsg sets MSG_TRUNC; reported
//     as EMSGSIZE). A message whose length differs from its header is EPROTO.
//   SOCK_STREAM (sockmap targets, TCP): the 4-byte big-endian length prefix,
//     re-split in user space, a partial frame carried to the next wakeup.
// Each message is delivered whole, with its 4-byte header.
//
// pause() stops polling, so what the peer sends stays in the kernel (on KCM,
// the mux then hands further messages to the other KCM sockets once this one's
// receive buffer is full); resume() polls again. Level-triggered: messages that
// arrived while paused are read at the next loop turn. A watcher made with a
// PollGroup reads when its group does (poll_group.h): pausing a worker's sockets
// together is then one flag. pause() or resume() on it takes it out of the group
// for good, to read (or not) on its own. flush() reads everything
// the socket holds right now, paused or not: the last reads after a peer's FIN.
// A wakeup on a thread that can no longer run JS (it is stopping) stops the watcher
// without reading: the messages stay in the kernel for the next reader.
#pragma once

#include <napi.h>

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "poll_group.h"
#include "read_buffer.h"
#include "uv_poll_handle.h"

namespace kmux {

class MessageWatcher : public Napi::ObjectWrap<MessageWatcher> {
 public:
  static Napi::Function Define(Napi::Env env);

  /** new MessageWatcher(fd, maxFrameBytes, batchBytes, batchMessages, onMessages, onClose, onWritable, group?) */
  explicit MessageWatcher(const Napi::CallbackInfo& info);
  ~MessageWatcher() override;

 private:
  enum class Framing { kMessage, kStream };

  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value WaitWritable(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  /** Re-arms the poll for what is wanted now: reading unless paused or the group reads, writability if asked. */
  int Arm();
  /** Leaves the group, if in one; whether it was. */
  bool Ungroup();

  static void OnEvent(void* self, int status, int events);
  /** Reads and delivers one batch; the number of messages delivered. */
  size_t ReadBatch();
  /** Scans the stream buffer from complete_ for whole frames; 0 or EMSGSIZE. */
  int SplitStream();
  /** After a message socket's read of `have` bytes: completes the message; 0, EMSGSIZE or EPROTO. */
  int AdvanceMessage(size_t have);
  /** Makes room for at least `bytes` more after used_. */
  void Reserve(size_t bytes);
  void Deliver();
  /** Stops for good and reports err (0: orderly end of stream) to onClose, once. */
  void Finish(int err, const char* call);
  void Stop();

  Napi::Env env_;
  int fd_;
  Framing framing_;
  bool seqpacket_;  // MSG_EOR ends a message sent on it
  uint32_t max_frame_;
  size_t batch_bytes_;
  size_t batch_messages_;  // a message socket stops reading at this many per wakeup
  UvPollHandle poll_;
  Napi::FunctionReference on_messages_, on_close_, on_writable_;
  bool stopped_ = false;
  bool want_writable_ = false;
  bool paused_ = false;
  PollGroup* group_ = nullptr;       // reads through it while set; group_ref_ keeps it alive
  Napi::ObjectReference group_ref_;
  uint64_t member_ = 0;

  ReadBuffer buffer_;               // [0, complete_) whole messages, [complete_, used_) a partial frame
  size_t used_ = 0;
  size_t complete_ = 0;
  std::vector<uint32_t> offsets_;   // message starts, then the end of the last one
  std::vector<iovec> gather_;       // Send()'s parts, kept to reuse its allocation
};

}  // namespace kmux
