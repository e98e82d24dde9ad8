// The read buffer of a MessageWatcher, mapped straight from the kernel (mmap,
// mremap, munmap) rather than taken from malloc. Why: a KCM read needs room for
// 4 + maxFrameBytes (16 MiB by default), and glibc raises its mmap threshold to
// the size of the first such block freed, so every later one came from the
// worker thread's arena, whose touched pages outlive the free: RSS grew by
// ~200 KiB per closed connection (KCM churn in the VM). A private mapping costs
// address space only, touches only the pages a message fills, and gives every
// page back when the watcher closes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kmux {

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { Release(); }

  uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  /** Grows to at least `bytes` (contents kept); throws std::bad_alloc when the kernel refuses. */
  void Grow(size_t bytes);
  /** Unmaps everything now. */
  void Release();

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace kmux
