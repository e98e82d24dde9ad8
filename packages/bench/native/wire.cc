#include "wire.h"

namespace {

uint32_t readBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Framed Thrift, strict binary protocol: 0x8001 0000 | type | name length | name | seqid.
// A CALL coming back counts as a reply: a raw echo server returns the request unchanged.
const char* parseThrift(const uint8_t* body, size_t length, Reply& out) {
  if (length < 12) return "thrift reply shorter than a message head";
  uint32_t versionAndType = readBe32(body);
  if ((versionAndType & 0xffff0000u) != 0x80010000u) return "not a strict binary-protocol message";
  uint32_t type = versionAndType & 0xff;
  if (type < 1 || type > 4) return "unknown thrift message type";
  uint32_t nameLength = readBe32(body + 4);
  if (nameLength > length - 12) return "thrift method name overruns the frame";
  out.id = readBe32(body + 8 + nameLength);
  out.failed = type == 3;  // EXCEPTION
  return nullptr;
}

bool readVarint(const uint8_t*& p, const uint8_t* end, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    uint8_t byte = *p++;
    value |= uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// kmux.envelope.v1.Response (packages/protobuf/WIRE.md): id = field 1, status = field 2
// (0 or absent is OK); every other field is skipped by wire type.
const char* parseProtobuf(const uint8_t* body, size_t length, Reply& out) {
  const uint8_t* p = body;
  const uint8_t* end = body + length;
  uint64_t id = 0;
  uint64_t status = 0;
  while (p < end) {
    uint64_t tag;
    uint64_t value;
    if (!readVarint(p, end, tag)) return "truncated protobuf tag";
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:
        if (!readVarint(p, end, value)) return "truncated protobuf varint";
        if (field == 1) id = value;
        if (field == 2) status = value;
        break;
      case 2:
        if (!readVarint(p, end, value) || value > static_cast<uint64_t>(end - p)) return "protobuf field overruns the frame";
        p += value;
        break;
      case 1:
        if (end - p < 8) return "truncated protobuf fixed64";
        p += 8;
        break;
      case 5:
        if (end - p < 4) return "truncated protobuf fixed32";
        p += 4;
        break;
      default:
        return "unsupported protobuf wire type";
    }
  }
  out.id = static_cast<uint32_t>(id);
  out.failed = static_cast<uint32_t>(status) != 0;
  return nullptr;
}

}  // namespace

const char* parseReply(Protocol protocol, const uint8_t* body, size_t length, Reply& out) {
  return protocol == Protocol::kThrift ? parseThrift(body, length, out) : parseProtobuf(body, length, out);
}

void patchId(Protocol protocol, uint8_t* at, uint32_t id) {
  if (protocol == Protocol::kThrift) {
    at[0] = id >> 24;
    at[1] = id >> 16;
    at[2] = id >> 8;
    at[3] = id;
    return;
  }
  // A 5-byte varint whatever the value (longer than minimal, which protobuf allows), so
  // every id fits the room the template reserved.
  at[0] = (id & 0x7f) | 0x80;
  at[1] = ((id >> 7) & 0x7f) | 0x80;
  at[2] = ((id >> 14) & 0x7f) | 0x80;
  at[3] = ((id >> 21) & 0x7f) | 0x80;
  at[4] = (id >> 28) & 0x0f;
}
