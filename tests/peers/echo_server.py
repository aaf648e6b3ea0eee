"""Echo server for wslink's tests, on Python's `websockets` (a peer nobody here wrote).

Listens on 127.0.0.1 on a free port, prints "PORT <n>" on the first line, and
echoes every message back as it came (text as text, binary as binary).
Optional --cert/--key serve TLS. Ends when its parent kills it.
"""

import argparse
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    async with serve(echo, "127.0.0.1", 0, ssl=context, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
