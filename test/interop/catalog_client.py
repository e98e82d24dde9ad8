"""Calls the example Catalog service with Debian's python3-thrift and the committed gen-py
bindings, asserting every result. Usage: catalog_client.py PORT binary|compact [framed|buffered].
Prints one line per check and "ok" last; exits non-zero on the first failure."""

import hashlib
import sys

from example_bindings import check  # noqa: E402  (first: it puts gen-py on the path)

from thrift.protocol import TBinaryProtocol, TCompactProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from kmux_example import Catalog  # noqa: E402
from kmux_example.ttypes import InvalidArgument, ItemNotFound, Query  # noqa: E402


def expected_hash_rounds(data, rounds):
    digest = data
    for _ in range(rounds):
        digest = hashlib.sha256(digest + data).digest()
    return digest



def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    framing = sys.argv[3] if len(sys.argv) > 3 else "framed"
    wrap = TTransport.TFramedTransport if framing == "framed" else TTransport.TBufferedTransport
    transport = wrap(TSocket.TSocket("127.0.0.1", port))
    factory = TBinaryProtocol.TBinaryProtocol if protocol == "binary" else TCompactProtocol.TCompactProtocol
    client = Catalog.Client(factory(transport))
    transport.open()
    try:
        item = client.lookup(Query(sku="kb-001", withThumbnail=True))
        check("lookup returns the item", (item.sku, item.title, item.priceCents, item.tags)
              == ("kb-001", "Mechanical keyboard", 8900, ["input", "usb"]))
        check("lookup returns the thumbnail", item.thumbnail == hashlib.sha256(b"thumbnail:kb-001").digest())

        try:
            client.lookup(Query(sku="nope"))
            check("lookup of an unknown sku raises ItemNotFound", False)
        except ItemNotFound as error:
            check("lookup of an unknown sku raises ItemNotFound", error.sku == "nope")

        payload = bytes(range(256)) * 40
        check("echo returns its bytes", client.echo(payload) == payload)

        data = b"python"
        check("hashRounds computes the chain", client.hashRounds(data, 25) == expected_hash_rounds(data, 25))
        try:
            client.hashRounds(data, 0)
            check("hashRounds(0) raises InvalidArgument", False)
        except InvalidArgument as error:
            check("hashRounds(0) raises InvalidArgument", "rounds" in error.message)

        client.recordView("kb-001")  # oneway: nothing comes back, the next call must still work
        check("sleep after a oneway call", client.sleep(3) == 3)
    finally:
        transport.close()
    print("ok")


if __name__ == "__main__":
    main()
