#include "slow_methods.h"

#include <cstring>

#include "byte_order.h"

namespace kmux {
namespace {

/** Where a method name sits in a frame body. */
struct Name {
  const uint8_t* data = nullptr;
  size_t len = 0;
};

/** Longest Thrift method name the codec accepts (MAX_NAME_BYTES in message-head.ts). */
constexpr uint64_t kMaxThriftName = 4096;
constexpr uint32_t kBinaryVersion1 = 0x80010000;
constexpr uint8_t kCompactProtocolId = 0x82;
constexpr uint8_t kCompactVersion = 1;
constexpr uint16_t kTHeaderMagic = 0x0FFF;
constexpr size_t kTHeaderFixedBytes = 10;
/** A THeader's protocol id for each Thrift protocol (PROTOCOL_IDS in theader.ts). */
constexpr uint64_t kTHeaderBinary = 0;
constexpr uint64_t kTHeaderCompact = 2;

/** Reads forward through [at, end); every read fails, leaving `ok` false, rather than pass `end`. */
struct Cursor {
  const uint8_t* at;
  const uint8_t* end;
  bool ok = true;

  size_t left() const { return static_cast<size_t>(end - at); }
  /** An unsigned LEB128 of at most `max_bytes` bytes (its value over 64 bits is not needed). */
  uint64_t Varint(int max_bytes) {
    uint64_t value = 0;
    for (int i = 0; i < max_bytes && at < end; ++i) {
      const uint8_t byte = *at++;
      if (i < 9) value |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if (byte < 0x80) return value;
    }
    ok = false;
    return 0;
  }
  void Skip(uint64_t bytes) {
    if (bytes > left()) ok = false;
    else at += bytes;
  }
};

bool ThriftType(uint32_t type) { return type >= 1 && type <= 4; }  // CALL, REPLY, EXCEPTION, ONEWAY

bool RawName(const uint8_t* body, size_t len, Name* name) {
  // id u32 | method length u8 | method
  if (len < 5 || len < 5u + body[4]) return false;
  *name = {body + 5, body[4]};
  return true;
}

bool BinaryName(const uint8_t* body, size_t len, Name* name) {
  if (len < 4) return false;
  const uint32_t first = ReadBe32(body);
  if ((first & 0x80000000u) != 0) {
    // Strict: version word with the type in its low byte, name length, name, seqid.
    if ((first & 0xffff0000u) != kBinaryVersion1 || !ThriftType(first & 0xff) || len < 8) return false;
    const uint32_t length = ReadBe32(body + 4);
    if (length > kMaxThriftName || len < 8 + length + 4) return false;
    *name = {body + 8, length};
    return true;
  }
  // Old non-strict form: name length, name, type byte, seqid.
  if (first > kMaxThriftName || len < 4 + first + 5 || !ThriftType(body[4 + first])) return false;
  *name = {body + 4, first};
  return true;
}

bool CompactName(const uint8_t* body, size_t len, Name* name) {
  if (len < 2 || body[0] != kCompactProtocolId || (body[1] & 0x1f) != kCompactVersion || !ThriftType(body[1] >> 5)) return false;
  Cursor cursor{body + 2, body + len};
  cursor.Varint(5);  // seqid
  const uint64_t length = cursor.Varint(5);
  if (!cursor.ok || length > kMaxThriftName || length > cursor.left()) return false;
  *name = {cursor.at, static_cast<size_t>(length)};
  return true;
}

/** A Thrift message, plain or inside a THeader of the same protocol (transforms refused, as theader.ts refuses them). */
bool ThriftName(bool compact, const uint8_t* body, size_t len, Name* name) {
  if (len >= 2 && (static_cast<uint16_t>(body[0] << 8) | body[1]) == kTHeaderMagic) {
    if (len < kTHeaderFixedBytes) return false;
    const size_t start = kTHeaderFixedBytes + 4 * static_cast<size_t>((body[8] << 8) | body[9]);
    if (start > len) return false;
    Cursor header{body + kTHeaderFixedBytes, body + start};
    const uint64_t protocol = header.Varint(5);
    const uint64_t transforms = header.Varint(5);
    if (!header.ok || protocol != (compact ? kTHeaderCompact : kTHeaderBinary) || transforms != 0) return false;
    body += start;
    len -= start;
  }
  return compact ? CompactName(body, len, name) : BinaryName(body, len, name);
}

/**
 * The v1 request envelope: field 2 (LEN) is the method. Fields come in any order and the last
 * one wins, so every top-level field is walked (each skipped by its length); a known field of
 * the wrong wire type, or no method, fails as envelope.ts fails it.
 */
bool ProtobufName(const uint8_t* body, size_t len, Name* name) {
  constexpr uint32_t kVarint = 0, kI64 = 1, kLen = 2, kI32 = 5;
  constexpr uint32_t kMethodField = 2;
  Cursor cursor{body, body + len};
  Name found;
  while (cursor.ok && cursor.left() > 0) {
    const uint32_t tag = static_cast<uint32_t>(cursor.Varint(10));
    const uint32_t field = tag >> 3;
    const uint32_t type = tag & 7;
    if (!cursor.ok || field == 0) return false;
    // id and deadline_ms are varints; method, payload and metadata length-delimited.
    if (field >= 1 && field <= 5 && type != (field == 1 || field == 3 ? kVarint : kLen)) return false;
    switch (type) {
      case kVarint:
        cursor.Varint(10);
        break;
      case kLen: {
        const uint32_t length = static_cast<uint32_t>(cursor.Varint(10));
        if (cursor.ok && field == kMethodField) found = {cursor.at, length};
        cursor.Skip(length);
        break;
      }
      case kI64:
        cursor.Skip(8);
        break;
      case kI32:
        cursor.Skip(4);
        break;
      default:
        return false;  // groups, or no wire type at all
    }
  }
  if (!cursor.ok || found.len == 0) return false;
  *name = found;
  return true;
}

}  // namespace

bool SlowMethods::Named(const uint8_t* body, size_t len) const {
  Name name;
  bool read = false;
  switch (wire_) {
    case MethodWire::kRaw:
      read = RawName(body, len, &name);
      break;
    case MethodWire::kThriftBinary:
    case MethodWire::kThriftCompact:
      read = ThriftName(wire_ == MethodWire::kThriftCompact, body, len, &name);
      break;
    case MethodWire::kProtobuf:
      read = ProtobufName(body, len, &name);
      break;
  }
  if (!read) return false;
  for (const std::string& slow : names_) {
    if (slow.size() == name.len && std::memcmp(slow.data(), name.data, name.len) == 0) return true;
  }
  return false;
}

}  // namespace kmux
