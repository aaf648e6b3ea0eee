"""permessage-deflate echo servers for wslink's tests, on Python's `websockets`.

Starts one server per server-side configuration of the extension that
`websockets` supports (server_no_context_takeover, client_no_context_takeover,
server_max_window_bits, client_max_window_bits), all on 127.0.0.1, prints
"SERVER <name> <port>" for each and then "READY". Each echoes what it gets, and
answers two commands:

- "frag:<text>" is answered with <text> sent as a fragmented message (three
  frames, compressed as one message: RSV1 on the first frame only);
- "stats?" is answered with JSON: how many compressed messages the server has
  received and sent on this connection, and the parameters it agreed to.

Compressed frames are counted, on each connection's extension object, by
wrapping the extension's `decode` and `encode`.
Ends when its parent kills it.
"""

import asyncio
import itertools
import json
import sys

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Opcode

_decode = PerMessageDeflate.decode
_encode = PerMessageDeflate.encode


def counting_decode(self, frame, *, max_size=None):
    if frame.opcode in (Opcode.TEXT, Opcode.BINARY) and frame.rsv1:
        self.wslink_in = getattr(self, "wslink_in", 0) + 1
    return _decode(self, frame, max_size=max_size)


def counting_encode(self, frame):
    encoded = _encode(self, frame)
    if encoded.opcode in (Opcode.TEXT, Opcode.BINARY) and encoded.rsv1:
        self.wslink_out = getattr(self, "wslink_out", 0) + 1
    return encoded


PerMessageDeflate.decode = counting_decode
PerMessageDeflate.encode = counting_encode


async def handler(ws):
    async for message in ws:
        if isinstance(message, str) and message.startswith("frag:"):
            text = message[len("frag:"):]
            third = max(1, len(text) // 3)
            await ws.send([text[:third], text[third : 2 * third], text[2 * third :]])
        elif message == "stats?":
            extensions = [e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
            reply = {"deflate": None}
            if extensions:
                e = extensions[0]
                reply = {
                    "compressed_in": getattr(e, "wslink_in", 0),
                    "compressed_out": getattr(e, "wslink_out", 0),
                    "deflate": {
                        "server_no_context_takeover": e.local_no_context_takeover,
                        "client_no_context_takeover": e.remote_no_context_takeover,
                        "server_max_window_bits": e.local_max_window_bits,
                        "client_max_window_bits": e.remote_max_window_bits,
                    },
                }
            await ws.send(json.dumps(reply))
        else:
            await ws.send(message)


def configurations():
    """Every combination the server side can be configured with."""
    for snct, cnct, sbits, cbits in itertools.product(
        (False, True), (False, True), (None, 10), (None, 10)
    ):
        yield (snct, cnct, sbits, cbits)
    # A client window of 8 bits, which zlib cannot compress with.
    yield (False, False, None, 8)


async def main():
    servers = []
    for snct, cnct, sbits, cbits in configurations():
        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=snct,
            client_no_context_takeover=cnct,
            server_max_window_bits=sbits,
            client_max_window_bits=cbits,
        )
        server = await serve(
            handler, "127.0.0.1", 0, extensions=[factory], compression=None, max_size=None
        )
        servers.append(server)
        name = f"snct={int(snct)},cnct={int(cnct)},sbits={sbits or '-'},cbits={cbits or '-'}"
        print(f"SERVER {name} {server.sockets[0].getsockname()[1]}", flush=True)
    print("READY", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
