# wsclient.py: a small asyncio WebSocket (RFC 6455) and HTTP/1.1 client for
# the soak run, standard library only.
#
# The client side is spoken strictly (masked frames, the closing handshake,
# pongs for pings) and every server frame is checked against the RFC (no mask,
# no reserved bits, minimal length encoding, whole control frames of at most
# 125 bytes, valid UTF-8 text): a server that breaks it raises
# ProtocolViolation. The same client can break the rules on purpose (unmasked
# frames, unknown opcodes, partial frames, lengths it never sends) for the
# abuse part of the soak.
#
# SPDX-License-Identifier: MIT

import asyncio
import base64
import hashlib
import json
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
KNOWN_OPCODES = (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)


class ProtocolViolation(Exception):
    """The server broke RFC 6455 or HTTP/1.1."""


class HandshakeError(Exception):
    """The upgrade was answered with something other than 101."""

    def __init__(self, status, body=b""):
        super().__init__(f"upgrade answered {status}")
        self.status = status
        self.body = body


def mask_bytes(data, key):
    """XORs @data with the 4-byte @key, at C speed (one big integer)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload, *, fin=True, mask_key=None, rsv=0, length=None):
    """One frame; @length lies about the payload length when given."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    b1 = 0x80 if mask_key is not None else 0
    if n < 126:
        header = bytes((b0, b1 | n))
    elif n < 65536:
        header = bytes((b0, b1 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((b0, b1 | 127)) + n.to_bytes(8, "big")
    if mask_key is not None:
        return header + mask_key + mask_bytes(payload, mask_key)
    return header + payload


def parse_head(head):
    """Status line and headers of an HTTP response head (bytes up to the
    blank line). Returns: (version, status, reason, {lower name: value})"""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolViolation(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolViolation(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def open_tcp(host, port, *, rcvbuf=None, limit=2 ** 16):
    """A TCP connection as asyncio streams. With @rcvbuf, the receive buffer
    is set before connecting (so the window is small from the start) and
    @limit bounds what asyncio itself reads ahead (twice @limit)."""
    if rcvbuf is None:
        return await asyncio.open_connection(host, port, limit=limit)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=limit)


def abort_writer(writer, rst=False):
    """Drops a connection at once; with @rst the kernel sends a reset
    instead of a FIN (SO_LINGER 0)."""
    if rst:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
    writer.transport.abort()


class WebSocket:
    """One client connection after a successful upgrade."""

    def __init__(self, reader, writer, rng):
        self.reader = reader
        self.writer = writer
        self.rng = rng
        self.close_code = None      # from the server's close frame
        self.close_reason = None
        self.close_sent = False
        self.close_received = False
        self.eof = False
        self.pings = 0              # WebSocket pings from the server, answered
        self.length_forms = [0, 0, 0]   # frames read with 7-, 16- and 64-bit lengths
        self._fragments = None

    @classmethod
    async def connect(cls, host, port, *, rng, path="/ws", rcvbuf=None, limit=2 ** 16,
                      timeout=10.0, headers=()):
        reader, writer = await asyncio.wait_for(
            open_tcp(host, port, rcvbuf=rcvbuf, limit=limit), timeout)
        try:
            key = base64.b64encode(rng.randbytes(16))
            request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n")
            request += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
            writer.write(request.encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            _, status, _, fields = parse_head(head)
            if status != 101:
                body = b""
                length = int(fields.get("content-length", "0") or 0)
                if 0 < length <= 65536:
                    body = await asyncio.wait_for(reader.readexactly(length), timeout)
                raise HandshakeError(status, body)
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            if fields.get("sec-websocket-accept") != accept:
                raise ProtocolViolation("wrong Sec-WebSocket-Accept")
            if fields.get("upgrade", "").lower() != "websocket":
                raise ProtocolViolation("101 without Upgrade: websocket")
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer, rng)

    # -- sending ---------------------------------------------------------

    @property
    def closing(self):
        return self.writer.transport.is_closing()

    def send_raw(self, data):
        """Writes bytes as they are; nothing once the transport is closing
        (asyncio would log every write to a lost connection)."""
        if not self.closing:
            self.writer.write(data)

    def send(self, opcode, payload, *, fin=True, masked=True, rsv=0, length=None):
        key = self.rng.randbytes(4) if masked else None
        self.send_raw(encode_frame(opcode, payload, fin=fin, mask_key=key, rsv=rsv,
                                   length=length))

    def send_text(self, text):
        self.send(OP_TEXT, text.encode())

    def send_json(self, obj):
        self.send_text(json.dumps(obj, separators=(",", ":")))

    async def drain(self):
        if not self.closing:
            await self.writer.drain()

    def send_close(self, code=1000, reason=""):
        if self.close_sent:
            return
        self.close_sent = True
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode()
        self.send(OP_CLOSE, payload)

    # -- receiving -------------------------------------------------------

    async def read_frame(self):
        """The next frame as (fin, opcode, payload), checked against RFC 6455.
        Raises asyncio.IncompleteReadError at the end of the stream."""
        b0, b1 = await self.reader.readexactly(2)
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        if b1 & 0x80:
            raise ProtocolViolation("server frame is masked")
        if b0 & 0x70:
            raise ProtocolViolation("server frame has reserved bits set")
        if opcode not in KNOWN_OPCODES:
            raise ProtocolViolation(f"server frame has opcode {opcode:#x}")
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
            if n < 126:
                raise ProtocolViolation(f"16-bit length for {n} bytes")
            self.length_forms[1] += 1
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
            if n < 65536 or n >> 63:
                raise ProtocolViolation(f"64-bit length {n}")
            self.length_forms[2] += 1
        else:
            self.length_forms[0] += 1
        if opcode >= OP_CLOSE and (not fin or n > 125):
            raise ProtocolViolation("control frame fragmented or over 125 bytes")
        payload = await self.reader.readexactly(n) if n else b""
        return fin, opcode, payload

    def _on_close_frame(self, payload):
        if len(payload) == 1:
            raise ProtocolViolation("close frame with a one-byte body")
        self.close_received = True
        if payload:
            self.close_code = int.from_bytes(payload[:2], "big")
            try:
                self.close_reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation("close reason is not UTF-8") from None
        else:
            self.close_code = 1005
            self.close_reason = ""
        # Echo the code (RFC 6455 §5.5.1); the server then closes TCP.
        self.send_close(None if not payload else self.close_code)

    async def recv(self):
        """The next message: str for text, bytes for binary; None once the
        connection is over (close frame received and answered, or end of
        stream without one: see close_received and eof)."""
        while True:
            try:
                fin, opcode, payload = await self.read_frame()
            except asyncio.IncompleteReadError as error:
                if error.partial:
                    raise ProtocolViolation("stream ended inside a frame") from None
                self.eof = True
                return None
            if opcode == OP_PING:
                self.pings += 1
                if not self.close_sent:
                    self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self._on_close_frame(payload)
                return None
            if opcode == OP_CONT:
                if self._fragments is None:
                    raise ProtocolViolation("continuation frame without a message")
                self._fragments[1].append(payload)
                if not fin:
                    continue
                opcode, parts = self._fragments
                self._fragments = None
                payload = b"".join(parts)
            elif self._fragments is not None:
                raise ProtocolViolation("new message inside a fragmented one")
            elif not fin:
                self._fragments = (opcode, [payload])
                continue
            if opcode == OP_BINARY:
                return payload
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation("text frame is not UTF-8") from None

    async def wait_eof(self, timeout):
        """After the close frames: reads (and drops) until the server closes
        TCP. Returns: True if it did within @timeout (RFC 6455 §7.1.1: the
        server closes first)."""
        try:
            async with asyncio.timeout(timeout):
                while not self.eof:
                    if await self.reader.read(65536) == b"":
                        self.eof = True
        except (TimeoutError, ConnectionError):
            pass
        self.writer.transport.abort()
        return self.eof

    async def close(self, code=1000, timeout=10.0):
        """The closing handshake from our side; messages still arriving are
        dropped. Returns: True if the server answered with a close frame and
        closed TCP in time."""
        self.send_close(code)
        try:
            async with asyncio.timeout(timeout):
                while not self.close_received and not self.eof:
                    await self.recv()
        except (TimeoutError, ConnectionError, ProtocolViolation):
            self.writer.transport.abort()
            return False
        return await self.wait_eof(timeout) and self.close_received

    def abort(self, rst=False):
        abort_writer(self.writer, rst)


class HttpResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:200]!r}>"


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    version, status, _, headers = parse_head(head)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.read()
        headers["connection"] = "close"
    if version == "HTTP/1.0":
        headers.setdefault("connection", "close")
    return HttpResponse(status, headers, body)


class HttpClient:
    """Sequential HTTP/1.1 requests; with @keep_alive they share one
    connection for as long as the server keeps it. A request whose reused
    connection turns out to be closed (the server's idle timeout can race
    with it) is sent again once on a fresh one: callers only send
    idempotent requests (GETs, and publishes with an explicit id)."""

    def __init__(self, host, port, *, keep_alive=True, timeout=10.0):
        self.host = host
        self.port = port
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.requests = 0
        self.reused = 0        # requests answered on a connection already used
        self.retried = 0       # requests sent again after a closed reused connection
        self.connections = 0
        self._reader = None
        self._writer = None

    def close(self):
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None

    async def request(self, method, path, body=None, headers=()):
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body, separators=(",", ":")).encode()
        data = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Connection: {'keep-alive' if self.keep_alive else 'close'}\r\n")
        if body is not None:
            data += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        data = data.encode() + (body or b"")
        for attempt in (0, 1):
            reused = self._writer is not None
            if not reused:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout)
                self.connections += 1
            try:
                self._writer.write(data)
                response = await asyncio.wait_for(read_response(self._reader), self.timeout)
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self.close()
                if reused and attempt == 0 and not getattr(error, "partial", b""):
                    self.retried += 1
                    continue
                raise
            except BaseException:
                self.close()
                raise
            self.requests += 1
            if reused:
                self.reused += 1
            if not self.keep_alive or response.headers.get("connection", "").lower() == "close":
                self.close()
            return response
        raise AssertionError("unreachable")
