// An example product-catalog service for kmux. Its methods cover what a server has to
// get right: a cheap struct-in/struct-out call, a CPU-heavy call whose cost the caller
// sets, a raw binary echo for benchmarks, an asynchronous slow call (for out-of-order
// replies), a declared exception, and a oneway call.

namespace py kmux_example

struct Item {
  1: required string sku,
  2: required string title,
  3: i32 priceCents,
  4: list<string> tags,
  5: optional binary thumbnail,
}

struct Query {
  1: required string sku,
  // When set, the reply carries the thumbnail bytes.
  2: bool withThumbnail = false,
}

exception ItemNotFound {
  1: string sku,
  2: string message,
}

exception InvalidArgument {
  1: string message,
}

service Catalog {
  // Cheap: a map lookup. Throws the declared ItemNotFound for unknown skus.
  Item lookup(1: Query query) throws (1: ItemNotFound notFound),

  // CPU-heavy: SHA-256 chained `rounds` times over `data` (about 1 ms per 400 rounds
  // over 1 KiB of data on one server core), so benchmarks choose the cost of a request.
  binary hashRounds(1: binary data, 2: i32 rounds) throws (1: InvalidArgument invalid),

  // Returns its argument unchanged: the cheapest possible round trip.
  binary echo(1: binary data),

  // Waits `ms` milliseconds without using the CPU, then returns `ms`.
  i32 sleep(1: i32 ms),

  // Blocks its thread for `micros` µs without using the CPU (Atomics.wait), as a synchronous
  // call waiting on a lock or a blocking driver does; returns `micros`.
  i32 blockFor(1: i32 micros),

  // Fire-and-forget: the server sends no reply.
  oneway void recordView(1: string sku),
}
