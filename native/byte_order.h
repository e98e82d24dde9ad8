// Big-endian fields of the wire: the 4-byte length prefix of every frame.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

namespace kmux {

inline uint32_t ReadBe32(const uint8_t* p) {
  uint32_t be;
  std::memcpy(&be, p, sizeof be);
  return ntohl(be);
}

}  // namespace kmux
