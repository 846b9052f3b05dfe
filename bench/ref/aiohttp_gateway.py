#!/usr/bin/python3
"""Reference-design WebSocket gateway: the comparison point of wsgate's benchmark (issue #4).

This is the well-known design wsgate replaces, written the way a team would write it with
aiohttp and redis-py's asyncio client (Debian: python3-aiohttp, python3-redis):

* every gateway process is a node with its own id; run one per core;
* on connect the node sets the Redis key ``user:<id>`` to its node id, then sends ``welcome``;
* each node subscribes once to its own channel ``node:<id>`` and to ``broadcast``;
* ``send_message`` looks the target's node up in Redis and PUBLISHes the frame to that
  node's channel; ``broadcast`` PUBLISHes to ``broadcast``; every node writes what arrives on
  its channels to its local sockets;
* a per-stream ``seq`` comes from a Redis counter (INCR, pipelined with the lookup);
* channels (issue #12): a Redis pub/sub channel ``chan:<name>`` per wsgate channel, which a
  node subscribes to while it has at least one local subscriber of it; ``publish`` takes the
  channel's seq from the counter ``seq:chan:<name>`` (INCR) and PUBLISHes the publication
  frame there; every node writes it to its local subscribers.

It speaks the part of wsgate's JSON client protocol the load generator uses
(docs/protocol.md): ``?user_id=``, ``welcome`` first, ``ping``/``pong``, ``send_message``,
``broadcast``, ``subscribe`` / ``unsubscribe`` / ``publish``. There is no history: a message
to a user with no connection is dropped, and a subscribe's ``since`` replays nothing.

Usage: aiohttp_gateway.py --port P [--host 127.0.0.1] --node-id ID [--redis-url URL]
Prints "listening HOST:PORT" on stdout once it accepts connections; SIGTERM/SIGINT close
every socket and exit 0.
"""
import argparse
import asyncio
import itertools
import json
import logging
import re
import sys
import time

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

USER_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
CHANNEL = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
CHANNEL_PREFIX = "chan:"
MAX_CHANNELS_PER_CONN = 128  # wsgate's default WSGATE_MAX_CHANNELS_PER_CONN
MAX_MESSAGE_BYTES = 64 * 1024
PING_INTERVAL_S = 30.0  # same idle ping as wsgate's default WSGATE_PING_INTERVAL
# aiohttp's default listen backlog (128) overflows under a connection storm; deployments use
# a larger one (gunicorn's default is 2048).
LISTEN_BACKLOG = 2048
BROADCAST_CHANNEL = "broadcast"
REDIS_POOL_SIZE = 64

# Deletes the user's key only while it still names this node: the user may have connected
# elsewhere in the meantime.
UNREGISTER_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

log = logging.getLogger("aiohttp_gateway")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Gateway:
    def __init__(self, node_id, redis_url):
        self.node_id = node_id
        # redis-py's default pool opens a new connection for every concurrent command; under a
        # connection storm that runs the process out of file descriptors, so commands wait
        # for one of a bounded set instead, as production deployments configure it.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=REDIS_POOL_SIZE, decode_responses=True
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self.unregister_script = self.redis.register_script(UNREGISTER_LUA)
        self.local = {}  # user id -> set of WebSocketResponse
        self.channels = {}  # channel -> set of WebSocketResponse (local subscribers)
        # channel -> future done once Redis confirmed this node's SUBSCRIBE to it: a
        # `subscribed` answer waits for it, so no publication after it can be missed
        self.chan_ready = {}
        self.conn_channels = {}  # WebSocketResponse -> set of channels it follows
        self.conn_ids = itertools.count(1)
        self.pubsub = None
        self.listener = None

    # ---- lifecycle ----

    async def on_startup(self, app):
        await self.subscribe()
        self.listener = asyncio.create_task(self.listen())

    async def subscribe(self):
        # subscribe confirmations are read: they complete the channels' futures
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=False)
        names = [CHANNEL_PREFIX + c for c in self.channels]
        await self.pubsub.subscribe(f"node:{self.node_id}", BROADCAST_CHANNEL, *names)

    async def on_shutdown(self, app):
        for conns in list(self.local.values()):
            for ws in list(conns):
                await ws.close(code=1001, message=b"server shutdown")

    async def on_cleanup(self, app):
        self.listener.cancel()
        try:
            await self.listener
        except asyncio.CancelledError:
            pass
        await self.pubsub.close()
        await self.redis.close(close_connection_pool=True)

    # ---- connections ----

    async def handle_ws(self, request):
        user = request.query.get("user_id")
        if user is None or not USER_ID.match(user):
            raise web.HTTPUnauthorized(text="user_id required")
        ws = web.WebSocketResponse(
            protocols=("wsgate.v1",), max_msg_size=MAX_MESSAGE_BYTES, heartbeat=PING_INTERVAL_S
        )
        await ws.prepare(request)
        self.local.setdefault(user, set()).add(ws)
        self.conn_channels[ws] = set()
        try:
            await self.redis.set(f"user:{user}", self.node_id)
            await ws.send_str(
                dumps(
                    {
                        "type": "welcome",
                        "user": user,
                        "node": self.node_id,
                        "conn_id": str(next(self.conn_ids)),
                    }
                )
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.on_frame(ws, user, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self.send_error(ws, "binary_unsupported", "frames are JSON text")
        except ConnectionResetError:
            pass  # the client left while we wrote to it
        finally:
            await self.forget(user, ws)
        return ws

    async def forget(self, user, ws):
        for channel in self.conn_channels.pop(ws, ()):
            await self.leave_channel(ws, channel)
        conns = self.local.get(user)
        if conns is None:
            return
        conns.discard(ws)
        if conns:
            return
        del self.local[user]
        try:
            await self.unregister_script(keys=[f"user:{user}"], args=[self.node_id])
        except aioredis.RedisError as e:
            log.warning("unregister %s failed: %s", user, e)

    async def send_error(self, ws, code, message):
        await ws.send_str(dumps({"type": "error", "code": code, "message": message}))

    # ---- client frames ----

    async def on_frame(self, ws, user, text):
        try:
            msg = json.loads(text)
        except ValueError:
            return await self.send_error(ws, "invalid_json", "frame is not JSON")
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return await self.send_error(
                ws, "invalid_frame", "frame must be an object with a string type"
            )
        kind = msg["type"]
        if kind == "ping":
            await ws.send_str('{"type":"pong"}')
        elif kind == "send_message":
            target, content = msg.get("target_user"), msg.get("content")
            if not isinstance(target, str) or not USER_ID.match(target):
                return await self.send_error(
                    ws, "invalid_field", "target_user must be a string of 1-128 bytes"
                )
            if not isinstance(content, str):
                return await self.send_error(ws, "invalid_field", "content must be a string")
            await self.send_message(user, target, content)
        elif kind == "broadcast":
            content = msg.get("content")
            if not isinstance(content, str):
                return await self.send_error(ws, "invalid_field", "content must be a string")
            await self.broadcast(user, content)
        elif kind in ("subscribe", "unsubscribe", "publish"):
            channel = msg.get("channel")
            if not isinstance(channel, str) or not CHANNEL.match(channel):
                return await self.channel_reply(ws, msg, {"type": "error", "code": "bad_channel"})
            if kind == "subscribe":
                await self.subscribe_channel(ws, msg, channel)
            elif kind == "unsubscribe":
                if channel in self.conn_channels.get(ws, ()):
                    self.conn_channels[ws].discard(channel)
                    await self.leave_channel(ws, channel)
                await self.channel_reply(ws, msg, {"type": "unsubscribed", "channel": channel})
            elif "content" not in msg:
                await self.send_error(ws, "invalid_field", "content is required")
            else:
                await self.publish(ws, user, msg, channel)
        else:
            await self.send_error(ws, "unsupported_type", f"no handler for {kind}")

    # ---- channels ----

    async def channel_reply(self, ws, msg, frame):
        if "id" in msg:
            frame["ref"] = msg["id"]
        if frame["type"] == "error" and isinstance(msg.get("channel"), str):
            frame["channel"] = msg["channel"]
        await ws.send_str(dumps(frame))

    async def subscribe_channel(self, ws, msg, channel):
        mine = self.conn_channels.get(ws)
        if mine is None:
            return
        if channel not in mine:
            if len(mine) >= MAX_CHANNELS_PER_CONN:
                return await self.channel_reply(
                    ws, msg, {"type": "error", "code": "too_many_channels"})
            mine.add(channel)
            self.channels.setdefault(channel, set()).add(ws)
            if channel not in self.chan_ready:
                self.chan_ready[channel] = asyncio.get_running_loop().create_future()
                await self.pubsub.subscribe(CHANNEL_PREFIX + channel)
        ready = self.chan_ready.get(channel)
        if ready is not None:
            await ready
        position = int(await self.redis.get(f"seq:{CHANNEL_PREFIX}{channel}") or 0)
        await self.channel_reply(ws, msg, {"type": "subscribed", "channel": channel,
                                           "position": position, "epoch": "ref"})

    async def leave_channel(self, ws, channel):
        subs = self.channels.get(channel)
        if subs is None:
            return
        subs.discard(ws)
        if subs:
            return
        del self.channels[channel]
        ready = self.chan_ready.pop(channel, None)
        if ready is not None and not ready.done():
            ready.cancel()
        try:
            await self.pubsub.unsubscribe(CHANNEL_PREFIX + channel)
        except aioredis.RedisError as e:
            log.warning("unsubscribe %s failed: %s", channel, e)

    async def publish(self, ws, user, msg, channel):
        ts = int(time.time() * 1000)
        seq = await self.redis.incr(f"seq:{CHANNEL_PREFIX}{channel}")
        frame = {"type": "publication", "channel": channel, "from": user,
                 "content": msg["content"], "ts": ts, "seq": seq}
        await self.redis.publish(CHANNEL_PREFIX + channel, dumps(frame))
        if "id" in msg:
            await ws.send_str(dumps({"type": "sent", "ref": msg["id"], "stream": "channel",
                                     "channel": channel, "seq": seq}))

    async def send_message(self, user, target, content):
        ts = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as p:
            p.get(f"user:{target}")
            p.incr(f"seq:user:{target}")
            node, seq = await p.execute()
        if node is None:
            return
        frame = {"type": "message", "from": user, "content": content, "ts": ts, "seq": seq}
        await self.redis.publish(f"node:{node}", dumps({"to": target, "frame": frame}))

    async def broadcast(self, user, content):
        ts = int(time.time() * 1000)
        seq = await self.redis.incr("seq:broadcast")
        frame = {"type": "broadcast", "from": user, "content": content, "ts": ts, "seq": seq}
        await self.redis.publish(BROADCAST_CHANNEL, dumps(frame))

    # ---- deliveries from Redis ----

    async def listen(self):
        while True:
            try:
                await self.deliver_from(self.pubsub)
                problem = "subscription ended"
            except aioredis.ConnectionError as e:
                problem = f"connection lost ({e})"
            # Pub/sub keeps nothing for a subscriber that is away: what is published until
            # we are back is lost, as in any Redis pub/sub design.
            log.warning("pub/sub %s; subscribing again", problem)
            await self.pubsub.close()
            await asyncio.sleep(0.5)
            try:
                await self.subscribe()
            except aioredis.ConnectionError as e:
                log.warning("cannot subscribe again: %s", e)

    async def deliver_from(self, pubsub):
        async for m in pubsub.listen():
            if m["type"] == "subscribe" and m["channel"].startswith(CHANNEL_PREFIX):
                ready = self.chan_ready.get(m["channel"][len(CHANNEL_PREFIX):])
                if ready is not None and not ready.done():
                    ready.set_result(None)
            if m["type"] != "message":
                continue
            if m["channel"].startswith(CHANNEL_PREFIX):
                text = m["data"]
                targets = list(self.channels.get(m["channel"][len(CHANNEL_PREFIX):], ()))
            elif m["channel"] == BROADCAST_CHANNEL:
                text = m["data"]
                targets = [ws for conns in self.local.values() for ws in conns]
            else:
                d = json.loads(m["data"])
                text = dumps(d["frame"])
                targets = list(self.local.get(d["to"], ()))
            for ws in targets:
                if ws.closed:
                    continue
                try:
                    await ws.send_str(text)
                except ConnectionError:
                    pass  # the socket is going away; its handler cleans up


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--reuse-port", action="store_true", help="share the port with other nodes")
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s {args.node_id} %(levelname)s %(message)s"
    )

    gw = Gateway(args.node_id, args.redis_url)
    app = web.Application()
    app.router.add_get("/ws", gw.handle_ws)
    app.on_startup.append(gw.on_startup)
    app.on_shutdown.append(gw.on_shutdown)
    app.on_cleanup.append(gw.on_cleanup)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        reuse_port=args.reuse_port,
        backlog=LISTEN_BACKLOG,
        access_log=None,
        print=lambda _: print(f"listening {args.host}:{args.port}", flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
