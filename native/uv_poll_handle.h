// One uv_poll_t on the loop of the Node environment (main thread or worker)
// that created it. libuv requires uv_close() and a callback before the memory
// may go, so the handle lives on the heap and frees itself in that callback;
// the owner only ever calls Close(), which is idempotent.
#pragma once

#include <uv.h>

namespace kmux {

class UvPollHandle {
 public:
  using Callback = void (*)(void* owner, int status, int events);

  UvPollHandle() = default;
  UvPollHandle(const UvPollHandle&) = delete;
  UvPollHandle& operator=(const UvPollHandle&) = delete;
  ~UvPollHandle() { Close(); }

  /** 0 or a libuv error (negative errno). */
  int Init(uv_loop_t* loop, int fd, void* owner, Callback callback) {
    handle_ = new uv_poll_t;
    const int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;  // never initialised, so no uv_close
      handle_ = nullptr;
      return rc;
    }
    handle_->data = new Target{owner, callback};
    return 0;
  }

  /** (Re)arms the poll for events (UV_READABLE | UV_WRITABLE | UV_DISCONNECT); 0 or a libuv error. */
  int Start(int events) { return handle_ != nullptr ? uv_poll_start(handle_, events, &Dispatch) : UV_EBADF; }

  bool Open() const { return handle_ != nullptr; }

  /** Whether the armed poll keeps its loop (its thread) alive; it does by default. */
  void KeepsLoopAlive(bool keeps) {
    if (handle_ == nullptr) return;
    if (keeps) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  }

  void Close() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) {
      delete static_cast<Target*>(h->data);
      delete reinterpret_cast<uv_poll_t*>(h);
    });
    handle_ = nullptr;
  }

 private:
  struct Target {
    void* owner;
    Callback callback;
  };

  static void Dispatch(uv_poll_t* handle, int status, int events) {
    const Target* target = static_cast<Target*>(handle->data);
    target->callback(target->owner, status, events);
  }

  uv_poll_t* handle_ = nullptr;
};

}  // namespace kmux
