// Which requests the native transport's I/O thread (io_loop.h) confines to the slow lane
// (ServerOptions.slowMethods): it reads each request's method name in place, in the wire
// format the codec declares (ServerCodec.methodName), and compares it with the configured
// names. Only the head's few bytes are read, each bounds-checked, and nothing is allocated. A
// head that cannot be read is not slow: the worker's codec reports the real error. With no
// names, nothing is read at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kmux {

/**
 * How a request frame names its method, as the codecs read it: raw-wire.ts in @kmux/core,
 * message-head.ts and theader.ts in @kmux/thrift (a message plain or inside a THeader), and
 * envelope.ts in @kmux/protobuf (the v1 request envelope).
 */
enum class MethodWire { kRaw, kThriftBinary, kThriftCompact, kProtobuf };

class SlowMethods {
 public:
  SlowMethods() = default;
  /** `names`: the UTF-8 names requests carry on the wire. */
  SlowMethods(MethodWire wire, std::vector<std::string> names) : wire_(wire), names_(std::move(names)) {}

  /** Whether the request `body` (a frame without its length prefix) calls one of the names. */
  bool Match(const uint8_t* body, size_t len) const { return !names_.empty() && Named(body, len); }

 private:
  bool Named(const uint8_t* body, size_t len) const;

  MethodWire wire_ = MethodWire::kRaw;
  std::vector<std::string> names_;
};

}  // namespace kmux
