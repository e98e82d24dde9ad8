"""Calls the Catalog service over THeader with Debian's python3-thrift (THeaderProtocol over
a plain socket), checking the reply, the headers the handler saw, and a client_timeout.
Usage: theader_client.py PORT binary|compact. Prints one line per check and "ok" last."""

import json
import sys

from example_bindings import check  # noqa: E402  (first: it puts gen-py on the path)

from thrift.Thrift import TApplicationException  # noqa: E402
from thrift.protocol.THeaderProtocol import THeaderProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID  # noqa: E402
from kmux_example import Catalog  # noqa: E402



def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    subprotocol = THeaderSubprotocolID.BINARY if protocol == "binary" else THeaderSubprotocolID.COMPACT
    transport = TTransport.TBufferedTransport(TSocket.TSocket("127.0.0.1", port))
    header = THeaderProtocol(transport, (THeaderClientType.HEADERS,), subprotocol)
    client = Catalog.Client(header)
    transport.open()
    try:
        # The library sends the headers set since the last call, with the next call only.
        check("echo", client.echo(b"python") == b"python")
        header.set_header(b"x-request-id", b"py-7")
        check("the handler sees the headers", json.loads(client.echo(b"headers?")) == {"x-request-id": "py-7"})
        header.set_header(b"client_timeout", b"100")
        try:
            client.sleep(2000)
            check("client_timeout bounds the call", False)
        except TApplicationException as error:
            check("client_timeout bounds the call", error.message.startswith("deadline exceeded"))
    finally:
        transport.close()
    print("ok")


if __name__ == "__main__":
    main()
