#!/usr/bin/python3
"""The WebSocket side of tests/deploy/compose-test: drives the compose cluster through nginx.

  cluster-client.py --url ws://127.0.0.1:PORT/ws --gateways 2 --kill-with docker
      cross-gateway send_message both ways and a broadcast; then kills (docker kill) the
      gateway two of the users are on, sends to them while they are away, and checks that they
      resume through another gateway and get exactly what they missed, in order
  cluster-client.py --url ws://127.0.0.1:PORT/ws --gateways 3
      nginx reaches all three gateways, and messages cross between each pair
  cluster-client.py --url ws://127.0.0.1:PORT/ws --api http://127.0.0.1:PORT \
                    --pub-cmd '["docker-compose", ..., "exec", "-T", "router", "wsgate-pub"]'
      the server API (issue 13): a client through nginx receives a publish made with
      wsgate-pub in the router's container over NATS (the command as given) and over HTTP
      (--http http://127.0.0.1:8090), and one made with curl on the published API port with
      the key of WSGATE_API_KEY (the environment, not the command line); the seq each one
      printed is the seq the client got; no key or a wrong one is 401

  cluster-client.py --url ws://127.0.0.1:PORT/ws --gateways 2 --ip-limit
      the gateways' per-IP limit works behind nginx: 100 connections from one client address
      are admitted, the 101st within the minute is closed with 4029 retry_after=<s>, and
      another address is admitted
  cluster-client.py --url ws://127.0.0.1:PORT/ws --gateways 2 --compression
      a client offering permessage-deflate gets it through nginx (Sec-WebSocket-Extensions)

nginx balances with ip_hash on the client address, which it takes from X-Forwarded-For for
clients on private networks (deploy/nginx/nginx.conf). Every client here comes from the same
host, so each one sends an address of its own choosing; the test probes addresses until it
knows one per gateway. Exits 0 on success, 1 with a message on the first failed check.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse

import websockets

STEP_TIMEOUT = 15.0  # seconds any single expected event may take
QUIET = 1.0  # seconds of silence that show no extra frame is coming
RUN = f"{os.getpid()}x{int(time.time()) % 100000}"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def client_address(i):
    # 198.18.0.0/15 is reserved for benchmarking; ip_hash keys on the first three octets.
    return f"198.18.{i}.7"


class Client:
    """One WebSocket connection of one user; records every frame it receives."""

    def __init__(self, url, user, xff, resume=None):
        self.url, self.user, self.xff, self.resume = url, user, xff, resume
        self.frames = []
        self.ws = None
        self.reader = None
        self.closed = asyncio.Event()
        self.welcome = None

    def _target(self):
        query = {"user_id": self.user}
        if self.resume:
            query.update(self.resume)
        return self.url + "?" + urllib.parse.urlencode(query)

    async def open(self):
        self.ws = await websockets.connect(
            self._target(),
            extra_headers={"X-Forwarded-For": self.xff},
            open_timeout=STEP_TIMEOUT,
            ping_interval=None,
            max_size=2**20,
        )
        self.reader = asyncio.ensure_future(self._read())
        self.welcome = await self.wait_for(lambda f: f.get("type") == "welcome", "welcome")
        check(self.welcome.get("user") == self.user, f"{self.user}: welcome for {self.welcome}")
        check(self.welcome is self.frames[0], f"{self.user}: first frame is not the welcome")
        return self

    async def _read(self):
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    @property
    def node(self):
        return self.welcome["node"]

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def wait_for(self, pred, what, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for f in self.frames:
                if pred(f):
                    return f
            if time.monotonic() > deadline:
                raise Failure(f"{self.user}: no {what} within {timeout}s; got {self.frames}")
            if self.closed.is_set() and self.reader.done():
                raise Failure(f"{self.user}: connection closed before {what}; got {self.frames}")
            await asyncio.sleep(0.02)

    def stream(self, name):
        kind = "message" if name == "user" else "broadcast"
        return [f for f in self.frames if f.get("type") == kind]

    def position(self, name):
        """The seq of the last frame processed in a stream, as a resuming client keeps it."""
        frames = self.stream(name)
        return frames[-1]["seq"] if frames else self.welcome["positions"][name]

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


async def connect(url, user, xff, resume=None):
    return await Client(url, user, xff, resume).open()


async def probe_routes(url, gateways):
    """Maps each gateway node id to a client address that nginx sends to it."""
    routes = {}
    for i in range(1, 256):
        c = await connect(url, f"probe-{RUN}-{i}", client_address(i))
        routes.setdefault(c.node, client_address(i))
        await c.close()
        if len(routes) == gateways:
            break
    check(len(routes) == gateways,
          f"nginx reached {len(routes)} gateway(s) {sorted(routes)} over 255 client addresses, "
          f"expected {gateways}")
    print(f"cluster-client: nginx reaches {gateways} gateways: {sorted(routes)}", flush=True)
    return routes


async def send_and_ack(sender, frame, ref):
    frame = dict(frame, id=ref)
    await sender.send(frame)
    ack = await sender.wait_for(lambda f: f.get("ref") == ref, f"ack of {ref}")
    check(ack.get("type") == "sent", f"{sender.user}: {ref} answered {ack}")
    return ack["seq"]


async def deliver(sender, receivers, target, content, ref):
    """send_message from sender to target, checked on every connection in receivers."""
    seq = await send_and_ack(sender, {"type": "send_message", "target_user": target,
                                      "content": content}, ref)
    for r in receivers:
        m = await r.wait_for(lambda f: f.get("type") == "message" and f.get("seq") == seq,
                             f"message seq {seq}")
        check(m.get("from") == sender.user and m.get("content") == content,
              f"{r.user}: expected {content!r} from {sender.user}, got {m}")
    return seq


async def broadcast(sender, receivers, content, ref):
    seq = await send_and_ack(sender, {"type": "broadcast", "content": content}, ref)
    for r in receivers:
        b = await r.wait_for(lambda f: f.get("type") == "broadcast" and f.get("seq") == seq,
                             f"broadcast seq {seq}")
        check(b.get("from") == sender.user and b.get("content") == content,
              f"{r.user}: expected broadcast {content!r}, got {b}")
    return seq


def check_continuous(user, conns, name):
    """Over one user's successive connections, a stream's seqs follow each other exactly."""
    start = conns[0].welcome["positions"][name]
    seqs = [f["seq"] for c in conns for f in c.stream(name)]
    check(seqs == list(range(start + 1, start + 1 + len(seqs))),
          f"{user}: {name} stream not gapless and duplicate-free across resume: "
          f"after {start} got {seqs}")


async def scenario_kill(url, gateways, docker):
    routes = await probe_routes(url, gateways)
    (n1, xff1), (n2, xff2) = sorted(routes.items())[:2]
    alice = await connect(url, f"alice-{RUN}", xff1)
    carol = await connect(url, f"carol-{RUN}", xff1)
    bob = await connect(url, f"bob-{RUN}", xff2)
    check(alice.node == n1 and carol.node == n1 and bob.node == n2,
          f"ip_hash not sticky: alice {alice.node}, carol {carol.node}, bob {bob.node}")

    await deliver(alice, [bob], bob.user, "hello bob", "a1")
    await deliver(bob, [alice], alice.user, "hello alice", "b1")
    await broadcast(alice, [alice, bob, carol], "hello all", "a2")
    print(f"cluster-client: send_message {n1} <-> {n2} and broadcast delivered", flush=True)

    # The gateway's hostname is its container id, and its node id is gw-<hostname>.
    container = n1[len("gw-"):] if n1.startswith("gw-") else n1
    subprocess.run([docker, "kill", container], check=True, stdout=subprocess.DEVNULL,
                   timeout=60)
    for c in (alice, carol):
        try:
            await asyncio.wait_for(c.closed.wait(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(f"{c.user}: connection still open {STEP_TIMEOUT}s after {n1} was killed")
    print(f"cluster-client: killed {n1}; its clients were disconnected", flush=True)

    # While they are away: messages to each, and a broadcast. Each is acknowledged as stored.
    missed = {alice.user: [], carol.user: []}
    for i in range(3):
        await send_and_ack(bob, {"type": "send_message", "target_user": alice.user,
                                 "content": f"away {i}"}, f"ba{i}")
        missed[alice.user].append(f"away {i}")
    for i in range(2):
        await send_and_ack(bob, {"type": "send_message", "target_user": carol.user,
                                 "content": f"away {i}"}, f"bc{i}")
        missed[carol.user].append(f"away {i}")
    await send_and_ack(bob, {"type": "broadcast", "content": "while away"}, "bb")

    for old in (alice, carol):
        resume = {"since": old.position("user"),
                  "broadcast_since": old.position("broadcast"),
                  "epoch": old.welcome["epoch"]}
        new = await reconnect(url, old.user, old.xff, resume)
        check(new.node != n1, f"{old.user}: resumed on the killed gateway {n1}")
        got = [m["content"] for m in (await settle(new, "user", len(missed[old.user])))]
        check(got == missed[old.user],
              f"{old.user}: expected {missed[old.user]} on resume, got {got}")
        bcast = await settle(new, "broadcast", 1)
        check(bcast[0]["content"] == "while away", f"{old.user}: resumed broadcast {bcast}")
        check_continuous(old.user, [old, new], "user")
        check_continuous(old.user, [old, new], "broadcast")
        await new.close()
        print(f"cluster-client: {old.user} resumed on {new.node} with everything it missed",
              flush=True)
    await bob.close()


async def reconnect(url, user, xff, resume):
    """Reconnects through nginx until it lets us in (it may first try the dead gateway)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await connect(url, user, xff, resume)
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake,
                websockets.ConnectionClosed) as e:
            if time.monotonic() > deadline:
                raise Failure(f"{user}: could not reconnect within 60s: {e!r}")
            await asyncio.sleep(0.5)


async def settle(client, name, count):
    """Waits for count frames of a stream, then a quiet moment that shows nothing else comes."""
    await client.wait_for(lambda f: len(client.stream(name)) >= count,
                          f"{count} frame(s) of stream {name}")
    await asyncio.sleep(QUIET)
    frames = client.stream(name)
    check(len(frames) == count, f"{client.user}: {name} stream: expected {count} frames, "
                                f"got {frames}")
    return frames


async def scenario_scaled(url, gateways):
    routes = await probe_routes(url, gateways)
    users = []
    for i, (node, xff) in enumerate(sorted(routes.items())):
        c = await connect(url, f"u{i}-{RUN}", xff)
        check(c.node == node, f"ip_hash not sticky: {xff} went to {c.node}, then {node}")
        users.append(c)
    for i, sender in enumerate(users):
        receiver = users[(i + 1) % len(users)]
        await deliver(sender, [receiver], receiver.user, f"ring {i}", f"r{i}")
    await broadcast(users[0], users, "hello scaled", "s1")
    for c in users:
        await c.close()
    print(f"cluster-client: send_message around all {gateways} gateways and a broadcast "
          f"delivered", flush=True)


def run_json(cmd, what):
    """Runs a publisher; returns its one JSON line (stdout) after checking its exit status."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       text=True)
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    check(p.returncode == 0 and len(lines) == 1,
          f"{what}: exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}")
    try:
        return json.loads(lines[0])
    except ValueError:
        raise Failure(f"{what}: not a JSON line: {lines[0]!r}")


def curl_publish(api, key, body):
    """POST /api/publish with curl; returns (HTTP status, body text)."""
    cmd = ["curl", "-sS", "--max-time", "15", "-o", "-", "-w", "\n%{http_code}",
           "-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    if key is not None:
        cmd += ["-H", f"Authorization: apikey {key}"]
    p = subprocess.run(cmd + [api.rstrip("/") + "/api/publish"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    check(p.returncode == 0, f"curl: exit {p.returncode}: {p.stderr}")
    text, _, status = p.stdout.rpartition("\n")
    return int(status), text


async def scenario_api(url, api, pub_cmd):
    key = os.environ.get("WSGATE_API_KEY")
    check(key, "WSGATE_API_KEY is not set")
    user = f"api-{RUN}"
    c = await connect(url, user, client_address(1))

    async def received(reply, via):
        check(reply.get("accepted") is True and reply.get("stream") == "user"
              and reply.get("user") == user and reply.get("connections") == 1,
              f"{via}: reply {reply}")
        f = await c.wait_for(lambda f: f.get("type") == "api.test" and f.get("via") == via,
                             f"the publish made with {via}")
        check(f.get("seq") == reply.get("seq"),
              f"{via}: the client got seq {f.get('seq')}, the reply said {reply.get('seq')}")

    r = run_json(pub_cmd + ["--user", user, "--id", "pub-nats",
                            json.dumps({"type": "api.test", "via": "wsgate-pub-nats"})],
                 "wsgate-pub over NATS")
    await received(r, "wsgate-pub-nats")
    r = run_json(pub_cmd + ["--http", "http://127.0.0.1:8090", "--user", user,
                            json.dumps({"type": "api.test", "via": "wsgate-pub-http"})],
                 "wsgate-pub over HTTP")
    await received(r, "wsgate-pub-http")
    status, text = curl_publish(api, key, {"user": user, "id": "curl-1",
                                           "data": {"type": "api.test", "via": "curl"}})
    check(status == 200, f"curl: HTTP {status}: {text}")
    await received(json.loads(text), "curl")
    for bad in (None, key + "x"):
        status, text = curl_publish(api, bad, {"user": user, "data": {"type": "api.test",
                                                                      "via": "unauthorized"}})
        check(status == 401, f"curl with {'no' if bad is None else 'a wrong'} key: HTTP {status}")
    await asyncio.sleep(QUIET)
    check(not any(f.get("via") == "unauthorized" for f in c.frames),
          "an unauthorized publish reached the client")
    print("cluster-client: wsgate-pub (NATS and HTTP) and curl reached a client through the "
          "API; no key and a wrong key answered 401", flush=True)
    await c.close()


async def edge_attempt(url, user, xff):
    """One connection through nginx: "admitted" (a welcome came), or (close code, reason)."""
    ws = await websockets.connect(
        url + "?" + urllib.parse.urlencode({"user_id": user}),
        extra_headers={"X-Forwarded-For": xff},
        open_timeout=STEP_TIMEOUT,
        ping_interval=None,
        compression=None,
    )
    try:
        f = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
        check(f.get("type") == "welcome", f"{user}: first frame {f}")
        return "admitted"
    except websockets.exceptions.ConnectionClosed:
        return (ws.close_code, ws.close_reason)
    finally:
        await ws.close()


async def scenario_ip_limit(url):
    """The gateways' per-IP limit (100 attempts per 60 s) counts the client nginx names, not
    nginx: the 101st attempt from one client address is refused with 4029 and retry_after
    (what a browser can read), while another address is still admitted. nginx's ip_hash
    sends one address to one gateway, whose limit is the one that counts."""
    limited, other = "198.18.250.1", "198.18.251.1"
    results = []
    for i in range(0, 100, 10):
        results += await asyncio.gather(
            *(edge_attempt(url, f"lim{i + j}-{RUN}", limited) for j in range(10)))
    admitted = sum(1 for r in results if r == "admitted")
    check(admitted == 100, f"{admitted} of the first 100 attempts from {limited} admitted: "
          f"{[r for r in results if r != 'admitted'][:3]}")
    r = await edge_attempt(url, f"lim100-{RUN}", limited)
    check(isinstance(r, tuple) and r[0] == 4029 and r[1].startswith("retry_after="),
          f"the 101st attempt from {limited} within 60 s: {r}, expected close 4029 retry_after")
    r = await edge_attempt(url, f"other-{RUN}", other)
    check(r == "admitted", f"{other} refused ({r}) after {limited} reached its limit")
    print(f"cluster-client: through nginx the 101st connection from {limited} got "
          f"4029 retry_after; {other} was admitted", flush=True)


async def scenario_compression(url):
    """permessage-deflate is negotiated through nginx (the gateway's, offered by the client;
    nginx passes the extension headers through) and compressed frames decode."""
    ws = await websockets.connect(
        url + "?" + urllib.parse.urlencode({"user_id": f"z-{RUN}"}),
        extra_headers={"X-Forwarded-For": "198.18.252.1"},
        open_timeout=STEP_TIMEOUT,
        ping_interval=None,
        compression="deflate",
    )
    try:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        check("permessage-deflate" in ext,
              f"Sec-WebSocket-Extensions through nginx: {ext!r}, expected permessage-deflate")
        f = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
        check(f.get("type") == "welcome", f"first frame {f}")
        # a message to itself, large enough to be compressed (WSGATE_COMPRESSION_MIN_BYTES)
        content = "compressible " * 300
        await ws.send(json.dumps({"type": "send_message", "target_user": f"z-{RUN}",
                                  "content": content, "id": "z1"}))
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            f = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if f.get("type") == "message":
                break
        check(f.get("content") == content, f"the compressed message decoded as {str(f)[:200]}")
    finally:
        await ws.close()
    print(f"cluster-client: permessage-deflate negotiated through nginx ({ext})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/ws through nginx")
    ap.add_argument("--gateways", type=int, required=True, help="gateways behind nginx")
    ap.add_argument("--kill-with", metavar="DOCKER",
                    help="run the kill-and-resume scenario, killing with this docker client")
    ap.add_argument("--api", metavar="URL",
                    help="run the server-API scenario against the router's HTTP port at URL")
    ap.add_argument("--pub-cmd", metavar="JSON",
                    help="with --api: the command running wsgate-pub, as a JSON array")
    ap.add_argument("--ip-limit", action="store_true",
                    help="run the per-IP limit scenario (100 attempts per 60 s per client)")
    ap.add_argument("--compression", action="store_true",
                    help="check that permessage-deflate is negotiated through nginx")
    ap.add_argument("--timeout", type=float, default=240, help="bound on the whole run (s)")
    args = ap.parse_args()
    if args.ip_limit:
        run = scenario_ip_limit(args.url)
    elif args.compression:
        run = scenario_compression(args.url)
    elif args.api:
        if not args.pub_cmd:
            ap.error("--api needs --pub-cmd")
        run = scenario_api(args.url, args.api, json.loads(args.pub_cmd))
    elif args.kill_with:
        run = scenario_kill(args.url, args.gateways, args.kill_with)
    else:
        run = scenario_scaled(args.url, args.gateways)
    try:
        asyncio.run(asyncio.wait_for(run, args.timeout))
    except Failure as e:
        print(f"cluster-client: FAILED: {e}", file=sys.stderr)
        return 1
    except asyncio.TimeoutError:
        print(f"cluster-client: FAILED: not done within {args.timeout}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
