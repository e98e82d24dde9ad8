// A second example service, served beside Catalog on one port through Thrift's
// multiplexed protocol ("Service:method" names). Its sleep has the same name as
// Catalog's but another answer, so a caller sees which service ran it.

namespace py kmux_inventory

service Inventory {
  // Units of `sku` in stock; 0 for an unknown sku.
  i32 stock(1: string sku),

  // Waits `ms` milliseconds without using the CPU, then returns -ms.
  i32 sleep(1: i32 ms),
}
