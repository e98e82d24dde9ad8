// Reading reply frames: only the request id and whether the call failed. Bodies are
// never decoded further.
#pragma once

#include <cstddef>
#include <cstdint>

enum class Protocol { kThrift, kProtobuf };

struct Reply {
  uint32_t id;
  bool failed;
};

/**
 * Parses one reply body (without its 4-byte length prefix). Returns nullptr and fills
 * `out`, or returns why the body is not a reply of `protocol`.
 */
const char* parseReply(Protocol protocol, const uint8_t* body, size_t length, Reply& out);

/** Writes `id` where the template reserved room for it (see request-template.ts). */
void patchId(Protocol protocol, uint8_t* at, uint32_t id);
