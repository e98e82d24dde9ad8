#include "read_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>

namespace kmux {

void ReadBuffer::Grow(size_t bytes) {
  if (bytes <= capacity_) return;
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (bytes + page - 1) / page * page;
  // MAP_NORESERVE: a maxFrameBytes reservation is address space, not committed memory.
  void* mapped = data_ == nullptr
                     ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                     : mremap(data_, capacity_, size, MREMAP_MAYMOVE);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(mapped);
  capacity_ = size;
}

void ReadBuffer::Release() {
  if (data_ != nullptr) munmap(data_, capacity_);
  data_ = nullptr;
  capacity_ = 0;
}

}  // namespace kmux
