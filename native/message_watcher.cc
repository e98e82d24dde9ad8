#include "message_watcher.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "byte_order.h"
#include "errors.h"

namespace kmux {
namespace {

/** Room asked of each recv: larger reads mean fewer syscalls for small messages. */
constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

Napi::Function MessageWatcher::Define(Napi::Env env) {
  return DefineClass(env, "MessageWatcher",
                     {InstanceMethod("send", &MessageWatcher::Send),
                      InstanceMethod("waitWritable", &MessageWatcher::WaitWritable),
                      InstanceMethod("close", &MessageWatcher::Close),
                      InstanceMethod("pause", &MessageWatcher::Pause),
                      InstanceMethod("resume", &MessageWatcher::Resume),
                      InstanceMethod("flush", &MessageWatcher::Flush)});
}

MessageWatcher::MessageWatcher(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MessageWatcher>(info),
      env_(info.Env()),
      fd_(info[0].As<Napi::Number>().Int32Value()),
      max_frame_(info[1].As<Napi::Number>().Uint32Value()),
      batch_bytes_(info[2].As<Napi::Number>().Uint32Value()),
      batch_messages_(info[3].As<Napi::Number>().Uint32Value()) {
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &len) != 0) throw SysError(env_, "getsockopt(SO_TYPE)", errno);
  framing_ = type == SOCK_STREAM ? Framing::kStream : Framing::kMessage;
  seqpacket_ = type == SOCK_SEQPACKET;
  on_messages_ = Napi::Persistent(info[4].As<Napi::Function>());
  on_close_ = Napi::Persistent(info[5].As<Napi::Function>());
  on_writable_ = Napi::Persistent(info[6].As<Napi::Function>());

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) throw SysError(env_, "napi_get_uv_event_loop", EINVAL);
  int rc = poll_.Init(loop, fd_, this, &MessageWatcher::OnEvent);
  if (rc != 0) throw SysError(env_, "uv_poll_init", -rc);
  if (info.Length() > 7 && info[7].IsObject()) {
    Napi::Object group = info[7].As<Napi::Object>();
    group_ = PollGroup::Unwrap(group);
    member_ = group_->Add(fd_, this, &MessageWatcher::OnEvent);
    if (member_ == 0) {
      const int err = errno;
      poll_.Close();
      throw SysError(env_, "epoll_ctl(EPOLL_CTL_ADD)", err);
    }
    group_ref_ = Napi::Persistent(group);
  } else if ((rc = poll_.Start(UV_READABLE)) != 0) {
    poll_.Close();
    throw SysError(env_, "uv_poll_start", -rc);
  }
  Reserve(std::max(batch_bytes_, kReadChunk) + kReadChunk);
  // Polling keeps the object alive even if JS drops it; Stop() lets go.
  Ref();
}

Napi::Value MessageWatcher::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) throw SysError(env, "send (watcher closed)", EBADF);
  auto parts = info[0].As<Napi::Array>();
  const uint32_t count = parts.Length();
  // A message socket must get the whole message in one sendmsg (MSG_EOR ends it there).
  if (framing_ == Framing::kMessage && count > IOV_MAX) throw SysError(env, "sendmsg (more parts than IOV_MAX)", EMSGSIZE);
  gather_.clear();
  for (uint32_t i = 0; i < count; ++i) {
    auto part = parts.Get(i).As<Napi::Uint8Array>();
    if (part.ByteLength() > 0) gather_.push_back({part.Data(), part.ByteLength()});
  }
  // MSG_EOR ends the message on SEQPACKET (KCM); MSG_NOSIGNAL: EPIPE, not SIGPIPE.
  const int flags = MSG_DONTWAIT | MSG_NOSIGNAL | (seqpacket_ ? MSG_EOR : 0);
  double taken = 0;
  for (size_t next = 0; next < gather_.size();) {
    msghdr msg{};
    msg.msg_iov = gather_.data() + next;
    msg.msg_iovlen = std::min<size_t>(gather_.size() - next, IOV_MAX);
    size_t offered = 0;
    for (size_t i = 0; i < msg.msg_iovlen; ++i) offered += msg.msg_iov[i].iov_len;
    const ssize_t n = sendmsg(fd_, &msg, flags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) throw SysError(env, "sendmsg", errno);
    taken += static_cast<double>(n);
    if (static_cast<size_t>(n) < offered) break;  // the socket is full: the caller keeps the rest
    next += msg.msg_iovlen;
  }
  return Napi::Number::New(env, taken);
}

Napi::Value MessageWatcher::WaitWritable(const Napi::CallbackInfo& info) {
  if (stopped_) throw SysError(info.Env(), "waitWritable (watcher closed)", EBADF);
  want_writable_ = true;
  const int rc = Arm();
  if (rc != 0) throw SysError(info.Env(), "uv_poll_start", -rc);
  return info.Env().Undefined();
}

Napi::Value MessageWatcher::Pause(const Napi::CallbackInfo& info) {
  if (!stopped_ && (Ungroup() || !paused_)) {
    paused_ = true;
    const int rc = Arm();
    if (rc != 0) throw SysError(info.Env(), "uv_poll_start", -rc);
  }
  return info.Env().Undefined();
}

Napi::Value MessageWatcher::Resume(const Napi::CallbackInfo& info) {
  if (!stopped_ && (Ungroup() || paused_)) {
    paused_ = false;
    const int rc = Arm();
    if (rc != 0) throw SysError(info.Env(), "uv_poll_start", -rc);
  }
  return info.Env().Undefined();
}

Napi::Value MessageWatcher::Flush(const Napi::CallbackInfo& info) {
  double total = 0;
  for (size_t n = 1; n > 0 && !stopped_;) {
    n = ReadBatch();
    total += static_cast<double>(n);
  }
  return Napi::Number::New(info.Env(), total);
}

int MessageWatcher::Arm() {
  // No events at all stops the poll (libuv); the fd leaves epoll until resumed.
  return poll_.Start((paused_ || group_ != nullptr ? 0 : UV_READABLE) | (want_writable_ ? UV_WRITABLE : 0));
}

bool MessageWatcher::Ungroup() {
  if (group_ == nullptr) return false;
  group_->Remove(member_, fd_);
  group_ = nullptr;
  group_ref_.Reset();
  return true;
}

Napi::Value MessageWatcher::Close(const Napi::CallbackInfo& info) {
  Stop();
  return info.Env().Undefined();
}

void MessageWatcher::Stop() {
  if (stopped_) return;
  stopped_ = true;
  Ungroup();
  poll_.Close();
  // Now, not in the destructor: that waits for the thread's next GC, and V8 does not
  // see this memory, so closed watchers could pile up hundreds of KiB each.
  buffer_.Release();
  used_ = complete_ = 0;
  // The callbacks are strong references to closures that reach the JS object wrapping this
  // one: kept, they would hold both (and whatever the closures capture) for the thread's
  // life, a cycle GC cannot see through. A callback running now keeps its own handle.
  on_messages_.Reset();
  on_close_.Reset();
  on_writable_.Reset();
  Unref();
}

void MessageWatcher::OnEvent(void* self_ptr, int status, int events) {
  auto* self = static_cast<MessageWatcher*>(self_ptr);
  if (status < 0) {
    // POLLERR: libuv has stopped the handle; sk_err says why.
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    self->Finish(err != 0 ? err : -status, "poll");
    return;
  }
  if ((events & UV_WRITABLE) != 0 && self->want_writable_) {
    self->want_writable_ = false;
    self->Arm();
    GuardLoopCallback([self] { CallFromLoop(self->env_, self->on_writable_, {}); });
    if (self->stopped_) return;
  }
  if ((events & UV_READABLE) == 0 || self->paused_) return;
  // Whatever a stopping thread reads is lost with it; left unread, it waits in the kernel for
  // the next reader (on KCM, the replacement worker). Also covers deaths no JS sees coming.
  if (!JsCanRun(self->env_)) return self->Stop();
  self->ReadBatch();
}

MessageWatcher::~MessageWatcher() = default;

void MessageWatcher::Reserve(size_t bytes) {
  // Room for a maxFrameBytes message costs address space: only the pages a message
  // fills are ever touched (read_buffer.h).
  buffer_.Grow(used_ + bytes);
}

int MessageWatcher::SplitStream() {
  while (used_ - complete_ >= 4) {
    const uint32_t len = ReadBe32(buffer_.data() + complete_);
    if (len > max_frame_) return EMSGSIZE;
    if (used_ - complete_ < 4 + static_cast<size_t>(len)) {
      Reserve(complete_ + 4 + len - used_);  // room for the rest of this frame
      break;
    }
    complete_ += 4 + len;
    offsets_.push_back(static_cast<uint32_t>(complete_));
  }
  return 0;
}

int MessageWatcher::AdvanceMessage(size_t have) {
  // One recvmsg, one whole message: it must be exactly as long as its header says.
  if (have < 4) return EPROTO;
  const uint32_t len = ReadBe32(buffer_.data() + complete_);
  if (len > max_frame_) return EMSGSIZE;
  if (have != 4 + static_cast<size_t>(len)) return EPROTO;
  complete_ = used_;
  offsets_.push_back(static_cast<uint32_t>(complete_));
  return 0;
}

size_t MessageWatcher::ReadBatch() {
  offsets_.assign(1, 0);
  int err = 0;
  const char* call = "recvmsg";
  bool eof = false;
  while (complete_ < batch_bytes_ && offsets_.size() <= batch_messages_) {
    // A message socket gets room for the largest message on every read:
    // reading one in parts is not safe on KCM (see the header).
    Reserve(framing_ == Framing::kMessage ? 4 + static_cast<size_t>(max_frame_) : kReadChunk);
    iovec iov{buffer_.data() + used_, buffer_.capacity() - used_};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0 && (framing_ == Framing::kStream || !seqpacket_ || (msg.msg_flags & MSG_EOR) == 0)) {
      eof = true;
      break;
    }
    used_ += static_cast<size_t>(n);
    if (framing_ == Framing::kStream) {
      err = SplitStream();
      if (err != 0) {
        call = "frame length above maxFrameBytes";
        break;
      }
      // A short read emptied the stream: asking again would only return EAGAIN (one syscall per
      // wakeup saved); what arrives later wakes the level-triggered poll again.
      if (static_cast<size_t>(n) < iov.iov_len) break;
    } else if ((msg.msg_flags & MSG_TRUNC) != 0) {
      err = EMSGSIZE;
      call = "recvmsg (MSG_TRUNC)";
      break;
    } else {
      err = AdvanceMessage(static_cast<size_t>(n));
      if (err != 0) {
        call = err == EMSGSIZE ? "message length above maxFrameBytes" : "recvmsg (message length differs from its header)";
        break;
      }
    }
  }
  const size_t delivered = offsets_.size() - 1;
  if (delivered > 0) Deliver();
  if (stopped_) return delivered;  // onMessages closed the watcher
  if (err != 0) {
    Finish(err, call);
  } else if (eof) {
    // A stream that ends inside a frame lost data: that is not an orderly end.
    if (used_ != 0) {
      Finish(EPROTO, "end of stream inside a frame");
    } else {
      Finish(0, "recvmsg");
    }
  }
  return delivered;
}

void MessageWatcher::Deliver() {
  // Building the arguments throws once the thread is stopping (a worker that called
  // process.exit() with a batch still to read): thrown from a libuv callback, that would
  // abort the whole process, and there is nobody left to deliver to.
  try {
    Napi::HandleScope scope(env_);
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env_, buffer_.data(), complete_);
    Napi::ArrayBuffer offsets_buffer = Napi::ArrayBuffer::New(env_, offsets_.size() * sizeof(uint32_t));
    std::memcpy(offsets_buffer.Data(), offsets_.data(), offsets_.size() * sizeof(uint32_t));
    Napi::Uint32Array offsets = Napi::Uint32Array::New(env_, offsets_.size(), offsets_buffer, 0);
    // Keep the partial message (if any) at the front for the next wakeup.
    std::memmove(buffer_.data(), buffer_.data() + complete_, used_ - complete_);
    used_ -= complete_;
    complete_ = 0;
    CallFromLoop(env_, on_messages_, {data, offsets});
  } catch (const Napi::Error&) {
    Stop();
  }
}

void MessageWatcher::Finish(int err, const char* call) {
  if (stopped_) return;
  Napi::FunctionReference on_close = std::move(on_close_);
  Stop();
  try {  // as in Deliver()
    Napi::HandleScope scope(env_);
    Napi::Value report = err != 0 ? SysError(env_, call, err).Value() : env_.Undefined();
    CallFromLoop(env_, on_close, {report});
  } catch (const Napi::Error&) {
  }
}

}  // namespace kmux
