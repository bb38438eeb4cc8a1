# checks.py: what the soak's clients check in what the server sends them:
# one Checker per WebSocket client reads every frame, matches answers to
# requests, and checks each subscription's events (seq = previous + 1 in one
# epoch, no gap, duplicate or reordering; the payload intact and in its
# publisher's order). Also the payloads the publishers send.
#
# SPDX-License-Identifier: MIT

import asyncio
import json
import re
import uuid
import zlib

from wsclient import ProtocolViolation

TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EPOCH_RE = re.compile(r"[0-9a-f]{16}")

PAYLOAD_TEXTS = [
    "plain ascii",
    'quote " backslash \\ slash /',
    "controls \n\t\r\b\f \u0001\u001f",
    "accents \u00e9\u00fc\u00f1 \u00c5ngstr\u00f6m",
    "cjk \u65e5\u672c\u8a9e \u4e2d\u6587",
    "astral \U0001F389\U0001F680",
    "",
]


def crc_hex(data):
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{zlib.crc32(text.encode()):08x}"


def make_data(rng):
    """A JSON value of some shape: the server must forward it unchanged."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randrange(-2 ** 63, 2 ** 63)
    if kind == 1:
        return rng.uniform(-1e9, 1e9)
    if kind == 2:
        return rng.choice(PAYLOAD_TEXTS)
    if kind == 3:
        return None
    if kind == 4:
        return {"a": [1, 2.5, "x", None, True, False, {"b": []}], "e": {}, "t": rng.choice(PAYLOAD_TEXTS)}
    if kind == 5:
        return rng.random() < 0.5
    if kind == 6:
        return [rng.randrange(1000) for _ in range(rng.randrange(20))]
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(10, 2000)))


def make_payload(rng, publisher, n, data=None):
    """{"p": publisher, "n": its count on the topic, "d": data, "c": CRC of d}"""
    if data is None:
        data = make_data(rng)
    return {"p": publisher, "n": n, "d": data, "c": crc_hex(data)}


def new_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Sub:
    """One subscription being checked: the events of one topic on one
    connection, expected contiguous from `next`."""
    __slots__ = ("topic", "epoch", "next", "stable", "skipped", "pubs")

    def __init__(self, topic, epoch, first, stable):
        self.topic = topic
        self.epoch = epoch
        self.next = first
        self.stable = stable
        self.skipped = set()     # seqs jumped over (a gap), in case they come late
        self.pubs = {}           # publisher → its last count "n" seen here


class Checker:
    """The reading side of one WebSocket client: every frame the server sends
    it is checked; requests get futures resolved by their answers."""

    def __init__(self, soak, ws, name, role):
        self.soak = soak
        self.ws = ws
        self.name = name
        self.role = role          # fast, churn, slow, publisher
        self.subs = {}
        self.ended = {}           # topic → (last seq, epoch) of a finished subscription
        self.pending = {}
        self.pub_last = {}        # stable topic → last seq acked to this publisher
        self.rid = 0
        self.closing = False      # we are ending it: its end is no finding
        self.slow_error = False
        self.task = None
        self.done = False
        self.error = None         # what ended the reading, if not the close
        self.events = 0

    def start(self):
        self.task = asyncio.create_task(self.run())
        return self

    # -- requests --------------------------------------------------------

    def _request(self, frame, ensure_ascii=True, **meta):
        self.rid += 1
        rid = f"{self.name}-{self.rid}"
        frame["request_id"] = rid
        future = asyncio.get_running_loop().create_future()
        meta["future"] = future
        self.pending[rid] = meta
        self.ws.send_text(json.dumps(frame, separators=(",", ":"), ensure_ascii=ensure_ascii))
        return future

    def subscribe(self, topic, *, stable, last_n=0, since=None):
        frame = {"type": "subscribe", "topic": topic, "client_id": self.name, "last_n": last_n}
        if since is not None:
            frame["since"] = since
        return self._request(frame, kind="subscribe", topic=topic, stable=stable,
                             last_n=last_n, since=since)

    def unsubscribe(self, topic):
        return self._request({"type": "unsubscribe", "topic": topic, "client_id": self.name},
                             kind="unsubscribe", topic=topic)

    def publish(self, topic, payload, *, stable, message_id, ensure_ascii=True):
        frame = {"type": "publish", "topic": topic, "message": {"id": message_id, "payload": payload}}
        return self._request(frame, ensure_ascii=ensure_ascii, kind="publish", topic=topic,
                             stable=stable)

    def ping(self):
        return self._request({"type": "ping"}, kind="ping", topic=None)

    async def settle(self, timeout):
        """Waits for the answers to every request sent."""
        futures = [meta["future"] for meta in self.pending.values()]
        if futures:
            done, _ = await asyncio.wait(futures, timeout=timeout)
            if len(done) < len(futures) and not self.done:
                self.soak.fail("no answer", f"{self.name}: {len(futures) - len(done)} requests "
                                            f"unanswered after {timeout:.0f}s")

    # -- the reader ------------------------------------------------------

    async def run(self):
        soak = self.soak
        try:
            while True:
                text = await self.ws.recv()
                if text is None:
                    break
                self.handle(text)
        except ProtocolViolation as error:
            soak.fail("server protocol", f"{self.name}: {error}")
        except ConnectionError as error:
            self.error = error
            if not self.closing:
                soak.fail("connection lost", f"{self.name} ({self.role}): {error!r}")
            self.closing = True
        except asyncio.CancelledError:
            self.closing = True
        finally:
            self.done = True
            for sub in self.subs.values():
                soak.stats["gaps"] += len(sub.skipped)
            for meta in self.pending.values():
                if not meta["future"].done():
                    meta["future"].set_result(None)
        if not self.closing and self.role != "slow":
            soak.fail("connection lost", f"{self.name} ({self.role}): the server ended it "
                                         f"(close code {self.ws.close_code} "
                                         f"{self.ws.close_reason!r}, eof {self.ws.eof})")

    async def close(self, timeout):
        """Our closing handshake; what still arrives meanwhile is checked."""
        soak = self.soak
        self.closing = True
        self.ws.send_close(1000)
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            soak.fail("close handshake", f"{self.name}: no close frame within {timeout:.0f}s")
            self.task.cancel()
            self.ws.abort()
            return
        if not self.ws.close_received:
            soak.fail("close handshake", f"{self.name}: connection ended without a close frame")
        elif self.ws.close_code != 1000:
            soak.fail("close handshake", f"{self.name}: close answered with {self.ws.close_code}")
        if not await self.ws.wait_eof(timeout):
            soak.fail("close handshake", f"{self.name}: TCP still open {timeout:.0f}s after the close")

    def cancel(self, rst=False):
        """Drops the connection without a close frame."""
        self.closing = True
        self.task.cancel()
        self.ws.abort(rst)

    def handle(self, text):
        soak = self.soak
        if isinstance(text, bytes):
            soak.fail("server frame", f"{self.name}: binary frame from the server")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            soak.fail("server frame", f"{self.name}: not JSON: {text[:200]!r}")
            return
        if not isinstance(msg, dict):
            soak.fail("server frame", f"{self.name}: not an object: {text[:200]!r}")
            return
        ts = msg.get("ts")
        if not isinstance(ts, str) or not TS_RE.fullmatch(ts):
            soak.fail("server frame", f"{self.name}: bad ts in {text[:200]!r}")
        kind = msg.get("type")
        if kind == "event":
            self.on_event(msg)
        elif kind == "ack":
            self.on_ack(msg, text)
        elif kind == "error":
            self.on_error(msg, text)
        elif kind == "pong":
            self.on_pong(msg, text)
        elif kind == "info":
            self.on_info(msg, text)
        else:
            soak.fail("server frame", f"{self.name}: unknown type in {text[:200]!r}")

    def on_event(self, msg):
        soak = self.soak
        stats = soak.stats
        topic = msg.get("topic")
        sub = self.subs.get(topic)
        if sub is None:
            soak.fail("unexpected event", f"{self.name}: event for {topic!r}, not subscribed")
            return
        stats["delivered"] += 1
        self.events += 1
        seq = msg.get("seq")
        if msg.get("epoch") != sub.epoch:
            soak.fail("epoch", f"{self.name} {topic}: event epoch {msg.get('epoch')!r}, "
                               f"subscribed to {sub.epoch!r}")
        if type(seq) is not int:
            soak.fail("server frame", f"{self.name} {topic}: event without an integer seq")
            return
        if seq == sub.next:
            sub.next = seq + 1
            stats["checked"] += 1
        elif seq > sub.next:
            stats["gap_incidents"] += 1
            soak.fail("gap", f"{self.name} {topic}: expected seq {sub.next}, got {seq}")
            if len(sub.skipped) < 100000:
                sub.skipped.update(range(sub.next, seq))
            sub.next = seq + 1
        elif seq in sub.skipped:
            sub.skipped.discard(seq)
            stats["out_of_order"] += 1
            soak.fail("out of order", f"{self.name} {topic}: seq {seq} after {sub.next - 1}")
        else:
            stats["duplicates"] += 1
            soak.fail("duplicate", f"{self.name} {topic}: seq {seq} again (at {sub.next - 1})")
        message = msg.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("id"), str) \
                or not UUID_RE.fullmatch(message["id"]):
            soak.fail("server frame", f"{self.name} {topic}: event message without a UUID id")
            return
        self.check_payload(sub, message.get("payload"), seq)

    def check_payload(self, sub, payload, seq):
        soak = self.soak
        if not isinstance(payload, dict) or not isinstance(payload.get("n"), int) \
                or "d" not in payload:
            soak.fail("payload", f"{self.name} {sub.topic} seq {seq}: not a soak payload: "
                                 f"{str(payload)[:200]}")
            return
        if payload.get("c") != crc_hex(payload["d"]):
            soak.fail("payload", f"{self.name} {sub.topic} seq {seq}: payload changed in transit")
        publisher = payload.get("p")
        n = payload["n"]
        previous = sub.pubs.get(publisher)
        # A publisher's messages on a stable topic all succeed: its counts
        # must follow each other; on others, some are refused (deleted topic).
        if previous is not None and (n != previous + 1 if sub.stable else n <= previous):
            soak.fail("publisher order", f"{self.name} {sub.topic} seq {seq}: {publisher} "
                                         f"message {n} after {previous}")
        sub.pubs[publisher] = n

    def on_ack(self, msg, text):
        soak = self.soak
        meta = self.pending.pop(msg.get("request_id"), None)
        if meta is None:
            soak.fail("unexpected ack", f"{self.name}: {text[:200]}")
            return
        topic = meta["topic"]
        if msg.get("topic") != topic or msg.get("status") != "ok":
            soak.fail("ack", f"{self.name}: ack for {topic!r} {meta['kind']} is {text[:200]}")
        kind = meta["kind"]
        if kind == "subscribe":
            self.on_subscribed(meta, msg, text)
        elif kind == "unsubscribe":
            sub = self.subs.pop(topic, None)
            if sub is not None:
                self.end_sub(sub)
            soak.stats["unsubscribed"] += 1
        elif kind == "publish":
            self.on_published(meta, msg, text)
        else:
            soak.fail("unexpected ack", f"{self.name}: ack to a {kind}: {text[:200]}")
        meta["future"].set_result(msg)

    def on_subscribed(self, meta, msg, text):
        soak = self.soak
        stats = soak.stats
        topic = meta["topic"]
        last = msg.get("seq")
        epoch = msg.get("epoch")
        if type(last) is not int or not isinstance(epoch, str) or not EPOCH_RE.fullmatch(epoch):
            soak.fail("ack", f"{self.name}: subscribe ack without seq and epoch: {text[:200]}")
            return
        sub = self.subs.get(topic)
        if sub is not None:
            # Subscribed already: acknowledged, and nothing changes (a second
            # replay would show up as duplicates).
            if epoch != sub.epoch:
                soak.fail("epoch", f"{self.name} {topic}: second ack with another epoch")
            stats["resubscribed_same"] += 1
            return
        if meta["stable"] and epoch != soak.epochs.get(topic):
            soak.fail("epoch", f"{self.name} {topic}: a stable topic changed epoch")
        stored = min(last, soak.args.history_size)
        first_stored = last - stored + 1
        since = meta["since"]
        if since is not None:
            expect = since["epoch"] == epoch and first_stored - 1 <= since["seq"] <= last
            recovered = msg.get("recovered")
            if recovered is not expect:
                soak.fail("recovery", f"{self.name} {topic}: recovered={recovered}, expected "
                                      f"{expect} (since {since['seq']}, last {last}, "
                                      f"stored {stored})")
            if recovered:
                first = since["seq"] + 1
                stats["since_recovered"] += 1
            else:
                first = last - min(meta["last_n"], stored) + 1
                stats["since_fell_back"] += 1
        else:
            if "recovered" in msg:
                soak.fail("ack", f"{self.name} {topic}: 'recovered' without 'since'")
            first = last - min(meta["last_n"], stored) + 1
            if meta["last_n"] > 0:
                stats["replays"] += 1
        self.subs[topic] = Sub(topic, epoch, first, meta["stable"])
        stats["subscribed"] += 1

    def on_published(self, meta, msg, text):
        soak = self.soak
        topic = meta["topic"]
        seq = msg.get("seq")
        if type(seq) is not int or seq < 1 or msg.get("duplicate"):
            soak.fail("publish", f"{self.name}: publish ack {text[:200]}")
            return
        soak.stats["published_ws"] += 1
        if meta["stable"]:
            if seq <= self.pub_last.get(topic, 0):
                soak.fail("publish order", f"{self.name} {topic}: acked seq {seq} after "
                                           f"{self.pub_last[topic]}")
            self.pub_last[topic] = seq
            soak.published[topic] += 1

    def on_error(self, msg, text):
        soak = self.soak
        error = msg.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("code"), str) \
                or not error.get("message"):
            soak.fail("server frame", f"{self.name}: malformed error frame {text[:200]}")
            return
        code = error["code"]
        rid = msg.get("request_id")
        if rid is None:
            if code == "SLOW_CONSUMER":
                self.slow_error = True
                if self.role != "slow":
                    soak.fail("cut", f"{self.name} ({self.role}) was cut as a slow consumer")
            else:
                soak.fail("unexpected error", f"{self.name}: {text[:200]}")
            return
        meta = self.pending.pop(rid, None)
        if meta is None:
            soak.fail("unexpected error", f"{self.name}: {text[:200]}")
            return
        if code == "TOPIC_NOT_FOUND" and meta["kind"] in ("subscribe", "publish") \
                and not meta["stable"]:
            soak.stats[f"{meta['kind']}_topic_gone"] += 1
        else:
            soak.fail("unexpected error", f"{self.name}: {meta['kind']} {meta['topic']!r}: "
                                          f"{text[:200]}")
        meta["future"].set_result(msg)

    def on_pong(self, msg, text):
        meta = self.pending.pop(msg.get("request_id"), None)
        if meta is None or meta["kind"] != "ping":
            self.soak.fail("server frame", f"{self.name}: unexpected pong {text[:200]}")
            return
        self.soak.stats["pongs"] += 1
        meta["future"].set_result(msg)

    def on_info(self, msg, text):
        soak = self.soak
        what = msg.get("msg")
        if what == "ping":
            soak.stats["heartbeats"] += 1
        elif what == "topic_deleted":
            topic = msg.get("topic")
            sub = self.subs.pop(topic, None)
            if sub is None:
                soak.fail("unexpected info", f"{self.name}: {text[:200]}")
                return
            if sub.stable:
                soak.fail("unexpected info", f"{self.name}: a stable topic deleted: {text[:200]}")
            self.end_sub(sub)
            soak.stats["topic_deleted_seen"] += 1
        else:
            soak.fail("unexpected info", f"{self.name}: {text[:200]}")

    def end_sub(self, sub):
        self.soak.stats["gaps"] += len(sub.skipped)
        self.ended[sub.topic] = (sub.next - 1, sub.epoch)
