"""Calls Catalog and Inventory on one kmux port with Debian's python3-thrift, through
TMultiplexedProtocol over one framed connection, asserting every result.
Usage: multiplexed_client.py PORT binary|compact. Prints one line per check and "ok" last."""

import sys

from example_bindings import check  # noqa: E402  (first: it puts gen-py on the path)

from thrift.Thrift import TApplicationException  # noqa: E402
from thrift.protocol import TBinaryProtocol, TCompactProtocol, TMultiplexedProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from kmux_example import Catalog  # noqa: E402
from kmux_example.ttypes import ItemNotFound, Query  # noqa: E402
from kmux_inventory import Inventory  # noqa: E402



def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    transport = TTransport.TFramedTransport(TSocket.TSocket("127.0.0.1", port))
    factory = TBinaryProtocol.TBinaryProtocol if protocol == "binary" else TCompactProtocol.TCompactProtocol
    wire = factory(transport)
    catalog = Catalog.Client(TMultiplexedProtocol.TMultiplexedProtocol(wire, "Catalog"))
    inventory = Inventory.Client(TMultiplexedProtocol.TMultiplexedProtocol(wire, "Inventory"))
    unknown = Inventory.Client(TMultiplexedProtocol.TMultiplexedProtocol(wire, "Nope"))
    transport.open()
    try:
        check("Catalog.sleep returns ms", catalog.sleep(5) == 5)
        check("Inventory.sleep returns -ms", inventory.sleep(5) == -5)
        check("Inventory.stock", inventory.stock("ms-002") == 40)
        try:
            catalog.lookup(Query(sku="nope"))
            check("Catalog.lookup raises ItemNotFound", False)
        except ItemNotFound as error:
            check("Catalog.lookup raises ItemNotFound", error.sku == "nope")
        try:
            unknown.stock("kb-001")
            check("an unknown service gets UNKNOWN_METHOD", False)
        except TApplicationException as error:
            check("an unknown service gets UNKNOWN_METHOD", error.type == TApplicationException.UNKNOWN_METHOD)
    finally:
        transport.close()
    print("ok")


if __name__ == "__main__":
    main()
