"""bench_wire: wire bytes of one broadcast, with and without permessage-deflate.

A minimal WebSocket client on a bare socket (standard library only), so that what is counted
is exactly what crosses the wire: frame header plus payload, compressed or not. Two
receivers connect to a gateway, one offering permessage-deflate (as browsers do) and one not;
a third connection sends one broadcast whose frame is about 2 KiB of JSON; each receiver
counts the bytes of the frame it gets and checks that it decodes to the same text."""
import base64
import json
import os
import random
import socket
import struct
import time
import urllib.parse
import zlib

OFFER = "permessage-deflate; client_max_window_bits"


class RawWs:
    def __init__(self, url, query, offer=None, timeout=10.0):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {u.path}?{urllib.parse.urlencode(query)} HTTP/1.1",
                 f"Host: {u.hostname}:{u.port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if offer:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise RuntimeError(f"upgrade refused: {lines[0]}")
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.extensions = self.headers.get("sec-websocket-extensions", "")

    def _more(self):
        d = self.sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        self.buf += d

    def _need(self, n):
        while len(self.buf) < n:
            self._more()

    def frame(self):
        """The next frame: (wire bytes, rsv1, opcode, payload)."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return off + n, bool(b0 & 0x40), b0 & 0x0F, payload

    def text(self):
        """The next text message: (wire bytes, compressed, text)."""
        while True:
            wire, rsv1, op, payload = self.frame()
            if op != 1:
                continue
            if rsv1:
                d = zlib.decompressobj(-15)
                payload = d.decompress(payload + b"\x00\x00\xff\xff")
            return wire, rsv1, payload.decode("utf-8")

    def send_text(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def room_update(target_bytes=2048, seed=4):
    """A chat room's state as JSON text of about target_bytes: what an application puts in a
    broadcast (ids, names, timestamps, sentences from a small vocabulary)."""
    rnd = random.Random(seed)
    words = ("the meeting moved to three", "see you there", "who has the report",
             "deploy finished", "lunch", "tests are green again", "can you review my change",
             "thanks", "the build is broken", "on my way", "great work everyone",
             "new version is out", "please update", "ok", "call in five minutes")
    items = []
    text = ""
    while len(text) < target_bytes:
        i = len(items)
        items.append({"id": 100000 + rnd.randrange(900000), "user": f"user-{rnd.randrange(5000)}",
                      "text": " ".join(rnd.choice(words) for _ in range(rnd.randrange(1, 4))),
                      "ts": 1764900000000 + i * rnd.randrange(1, 90000),
                      "reactions": rnd.randrange(0, 12)})
        text = json.dumps({"room": "general", "items": items}, separators=(",", ":"))
    return text


def measure(url, target_bytes=2048, timeout=10.0):
    """Connects a compressing and a plain receiver, broadcasts once, returns the figures."""
    z = RawWs(url, {"user_id": "wire-deflate"}, OFFER, timeout)
    p = RawWs(url, {"user_id": "wire-plain"}, None, timeout)
    s = RawWs(url, {"user_id": "wire-sender"}, None, timeout)
    try:
        for c in (z, p, s):
            c.text()  # welcome
        time.sleep(0.5)  # the router registers the connections
        content = room_update(target_bytes)
        tag = os.urandom(4).hex()
        s.send_text(json.dumps({"type": "broadcast", "content": content + tag}))
        out = {"negotiated": z.extensions, "plain_extensions": p.extensions}
        for name, c in (("deflate", z), ("plain", p)):
            while True:
                wire, rsv1, text = c.text()
                if tag in text:
                    break
            out[f"{name}_wire_bytes"] = wire
            out[f"{name}_compressed"] = rsv1
            out[f"{name}_text_bytes"] = len(text.encode())
            out[f"{name}_text"] = text
        out["same_text"] = out.pop("deflate_text") == out.pop("plain_text")
        out["saved"] = 1 - out["deflate_wire_bytes"] / out["plain_wire_bytes"]
        return out
    finally:
        for c in (z, p, s):
            c.close()
