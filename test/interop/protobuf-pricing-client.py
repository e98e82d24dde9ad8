"""Calls the example Pricing service on a kmux server with Debian's python3-protobuf,
written from packages/protobuf/WIRE.md alone: 4-byte big-endian length-prefixed frames,
each one kmux.envelope.v1 Request or Response. Usage:

    protobuf-pricing-client.py PORT GENERATED_DIR

GENERATED_DIR holds `protoc --python_out` output for envelope.proto and pricing.proto.
Prints one line per check and "ok" last; exits non-zero on the first failure."""

import hashlib
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
PORT, GENERATED_DIR = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, GENERATED_DIR)

from kmux.envelope.v1 import envelope_pb2  # noqa: E402
import pricing_pb2  # noqa: E402

Request, Response = envelope_pb2.Request, envelope_pb2.Response


def check(name, condition):
    if not condition:
        raise AssertionError(name)
    print("passed:", name)


class Connection:
    """One TCP connection; requests are written whole, responses read whole, by frame."""

    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)

    def send(self, *requests):
        frames = []
        for request in requests:
            body = request.SerializeToString()
            frames.append(struct.pack(">I", len(body)) + body)
        self.sock.sendall(b"".join(frames))  # several requests in one write: pipelined

    def receive(self):
        (length,) = struct.unpack(">I", self.read_exactly(4))
        return Response.FromString(self.read_exactly(length))

    def read_exactly(self, size):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("the server closed the connection")
            data += chunk
        return data

    def call(self, request):
        self.send(request)
        response = self.receive()
        if response.id != request.id:
            raise AssertionError(f"response id {response.id} for request {request.id}")
        return response

    def close(self):
        self.sock.close()


def quote_signature(lines, total_cents, rounds):
    text = ";".join(f"{line.sku}:{line.quantity}:{line.line_total_cents}" for line in lines) + f"={total_cents}"
    return hashlib.pbkdf2_hmac("sha256", text.encode(), b"kmux-example-quote", rounds, 32)


def main():
    connection = Connection()
    try:
        reply = connection.call(Request(id=1, method="GetPrice",
                                        payload=pricing_pb2.GetPriceRequest(sku="kb-001").SerializeToString()))
        price = pricing_pb2.Price.FromString(reply.payload)
        check("GetPrice returns the price", reply.status == envelope_pb2.OK
              and (price.sku, price.title, price.unit_price_cents, price.currency)
              == ("kb-001", "Mechanical keyboard", 8900, "EUR"))

        reply = connection.call(Request(id=2, method="GetPrice",
                                        payload=pricing_pb2.GetPriceRequest(sku="zz-9").SerializeToString()))
        check("GetPrice of an unknown sku is NOT_FOUND", reply.status == envelope_pb2.NOT_FOUND
              and reply.message == "no item with sku 'zz-9'" and reply.payload == b"")

        basket = pricing_pb2.QuoteRequest(signing_rounds=3000, lines=[
            pricing_pb2.BasketLine(sku="kb-001", quantity=12),
            pricing_pb2.BasketLine(sku="ms-002", quantity=100),
        ])
        reply = connection.call(Request(id=3, method="QuoteBasket", deadline_ms=5000, payload=basket.SerializeToString()))
        quote = pricing_pb2.Quote.FromString(reply.payload)
        check("QuoteBasket prices and signs the basket", reply.status == envelope_pb2.OK
              and [line.line_total_cents for line in quote.lines] == [101460, 255200]
              and quote.total_cents == 356660
              and quote.signature == quote_signature(quote.lines, quote.total_cents, 3000))

        empty = pricing_pb2.QuoteRequest(signing_rounds=1)
        reply = connection.call(Request(id=4, method="QuoteBasket", payload=empty.SerializeToString()))
        check("QuoteBasket of an empty basket is INVALID_ARGUMENT",
              reply.status == envelope_pb2.INVALID_ARGUMENT and reply.message == "the basket is empty")

        reply = connection.call(Request(id=5, method="Refund", payload=b""))
        check("an undeclared method is UNIMPLEMENTED", reply.status == envelope_pb2.UNIMPLEMENTED
              and "Refund" in reply.message)

        reply = connection.call(Request(id=6, method="GetPrice", payload=b"\x0a\xff\xff\xff"))
        check("a payload that is not a GetPriceRequest is INVALID_ARGUMENT",
              reply.status == envelope_pb2.INVALID_ARGUMENT and reply.message.startswith("cannot decode"))

        # Pipelining: a slow call, then 20 echoes and a lookup, all in one write. The replies
        # come back as they finish, the slow one last, each matched to its request by id.
        echoes = {100 + i: bytes([i]) * (i + 1) for i in range(1, 21)}
        connection.send(
            Request(id=100, method="Sleep", payload=pricing_pb2.SleepRequest(ms=500).SerializeToString()),
            *[Request(id=i, method="Echo", payload=pricing_pb2.EchoMessage(data=data).SerializeToString())
              for i, data in echoes.items()],
            Request(id=200, method="GetPrice", payload=pricing_pb2.GetPriceRequest(sku="mn-003").SerializeToString()),
        )
        replies = [connection.receive() for _ in range(22)]
        by_id = {reply.id: reply for reply in replies}
        check("pipelined replies match their requests by id", sorted(by_id) == sorted([100, 200, *echoes])
              and all(pricing_pb2.EchoMessage.FromString(by_id[i].payload).data == data for i, data in echoes.items())
              and pricing_pb2.Price.FromString(by_id[200].payload).unit_price_cents == 24900)
        check("the slow call's reply comes last", replies[-1].id == 100
              and pricing_pb2.SleepReply.FromString(replies[-1].payload).ms == 500)

        started = time.monotonic()
        reply = connection.call(Request(id=7, method="Sleep", deadline_ms=200,
                                        payload=pricing_pb2.SleepRequest(ms=5000).SerializeToString()))
        check("the envelope's deadline is DEADLINE_EXCEEDED when it passes",
              reply.status == envelope_pb2.DEADLINE_EXCEEDED and time.monotonic() - started < 2)
    finally:
        connection.close()

    stranger = Connection()
    try:
        stranger.sock.sendall(struct.pack(">I", 8) + bytes.fromhex("8001000100000004"))  # a Thrift call
        try:
            stranger.receive()
            closed = False
        except (EOFError, ConnectionResetError):
            closed = True
        check("a frame that is not an envelope closes the connection", closed)
    finally:
        stranger.close()
    print("ok")


if __name__ == "__main__":
    main()
