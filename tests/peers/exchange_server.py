"""A small JSON-RPC exchange for wslink's tests, on Python's `websockets`.

Listens on 127.0.0.1 on a free port and prints "PORT <n>" on the first line.
Ends when its parent kills it. What it speaks (JSON-RPC 2.0; a request's
"id" may be a number or a string, and is answered as it came):

  echo {..}                   -> result: the params
  sleep {"ms": n, ...}        -> result: the params, n milliseconds later
  public/auth {"secret": s}   -> {"access_token", "expires_in"} when s is
                                 "good", else an error; --token-lifetime sets
                                 expires_in; with --refuse-refresh a second
                                 auth on one connection is refused
  private/whoami              -> {"token", "auths", "connection"} with a token
                                 that has not expired, else error 13009
  public/subscribe {"channels": [..]}   -> result: the channels; with
                                 --resume, a client (the URL's ?client=X)
                                 keeps its subscriptions across connections
                                 and a second subscribe of one is an error
  public/unsubscribe {"channels": [..]} -> result: the channels
  test/publish {"channel", "count"}     -> sends `count` notifications
                                 {"method":"subscription","params":{"channel",
                                 "data":{"seq"}}} numbered per channel, the
                                 numbering kept across connections
  test/skip {"channel", "by"} -> the channel's next number jumps by `by`
  test/rewind {"channel", "to"} -> the channel's next number is `to`
  test/drop                   -> every connection is cut without a close frame
"""

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve

ARGS = None
CONNECTIONS = set()
# Per channel, the next number; kept across connections.
NEXT_SEQ = {}
# With --resume: the channels each client is subscribed to.
RESUMED = {}
COUNTER = {"connections": 0, "tokens": 0}


class Conn:
    def __init__(self, ws):
        COUNTER["connections"] += 1
        self.ws = ws
        self.number = COUNTER["connections"]
        query = parse_qs(urlparse(ws.request.path).query)
        self.client = query.get("client", [None])[0]
        self.auths = 0
        self.token = None
        self.expires_at = None
        if ARGS.resume and self.client is not None:
            self.channels = RESUMED.setdefault(self.client, set())
        else:
            self.channels = set()


def reply(rid, result=None, error=None):
    out = {"jsonrpc": "2.0", "id": rid}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    return json.dumps(out)


async def publish(channel, count):
    for _ in range(count):
        seq = NEXT_SEQ.get(channel, 1)
        NEXT_SEQ[channel] = seq + 1
        note = json.dumps(
            {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": {"seq": seq}}}
        )
        for conn in list(CONNECTIONS):
            if channel in conn.channels:
                try:
                    await conn.ws.send(note)
                except Exception:
                    pass


async def handle(conn, request):
    rid = request.get("id")
    method = request.get("method")
    params = request.get("params") or {}
    if method == "echo":
        return reply(rid, params)
    if method == "sleep":
        await asyncio.sleep(params.get("ms", 0) / 1000)
        return reply(rid, params)
    if method == "public/auth":
        conn.auths += 1
        if params.get("secret") != "good":
            return reply(rid, error={"code": 13004, "message": "invalid_credentials"})
        if ARGS.refuse_refresh and conn.auths > 1:
            return reply(rid, error={"code": 13009, "message": "refresh_refused"})
        COUNTER["tokens"] += 1
        conn.token = f"tok-{COUNTER['tokens']}"
        lifetime = ARGS.token_lifetime
        conn.expires_at = time.monotonic() + lifetime if lifetime > 0 else None
        return reply(rid, {"access_token": conn.token, "expires_in": lifetime})
    if method == "private/whoami":
        if conn.token is None or (conn.expires_at is not None and time.monotonic() >= conn.expires_at):
            return reply(rid, error={"code": 13009, "message": "invalid_token"})
        return reply(rid, {"token": conn.token, "auths": conn.auths, "connection": conn.number})
    if method == "public/subscribe":
        channels = params.get("channels", [])
        if ARGS.resume and any(c in conn.channels for c in channels):
            return reply(rid, error={"code": 11050, "message": "already_subscribed"})
        conn.channels.update(channels)
        return reply(rid, channels)
    if method == "public/unsubscribe":
        channels = params.get("channels", [])
        conn.channels.difference_update(channels)
        return reply(rid, channels)
    if method == "test/publish":
        await publish(params["channel"], params.get("count", 1))
        return reply(rid, params.get("count", 1))
    if method == "test/skip":
        channel = params["channel"]
        NEXT_SEQ[channel] = NEXT_SEQ.get(channel, 1) + params.get("by", 1)
        return reply(rid, NEXT_SEQ[channel])
    if method == "test/rewind":
        NEXT_SEQ[params["channel"]] = params["to"]
        return reply(rid, params["to"])
    if method == "test/drop":
        for other in list(CONNECTIONS):
            other.ws.transport.abort()
        return None
    return reply(rid, error={"code": -32601, "message": "method not found"})


async def serve_one(ws):
    conn = Conn(ws)
    CONNECTIONS.add(conn)
    try:
        async for message in ws:
            try:
                request = json.loads(message)
            except ValueError:
                continue
            if not isinstance(request, dict):
                continue
            # Each request in its own task: a slow one does not hold up the rest.
            asyncio.create_task(answer(conn, request))
    finally:
        CONNECTIONS.discard(conn)


async def answer(conn, request):
    try:
        out = await handle(conn, request)
        if out is not None:
            await conn.ws.send(out)
    except Exception:
        pass


async def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--token-lifetime", type=int, default=0)
    parser.add_argument("--refuse-refresh", action="store_true")
    parser.add_argument("--resume", action="store_true")
    ARGS = parser.parse_args()
    async with serve(serve_one, "127.0.0.1", 0, max_size=None, compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
