#!/usr/bin/env python3
"""ws-count: one WebSocket subscriber that counts a topic's events.

Subscribes to TOPIC on ws://HOST:PORT/ws, then reads until it has seen
EXPECTED events (or TIMEOUT seconds pass), checking that every event's seq
is the previous one + 1. Prints "received N, gaps G, first F, last L" and
exits 0 only if N == EXPECTED with no gap. Standard library only.
"""
import base64, json, os, socket, struct, sys, time

def main():
    host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    expected_file, timeout = sys.argv[4], float(sys.argv[5])
    s = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    body = json.dumps({"type": "subscribe", "topic": topic, "client_id": "ws-count"}).encode()
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(body)]) + mask +
              bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    print("subscribed", flush=True)
    received = gaps = 0
    first = last = None
    deadline = time.monotonic() + timeout
    expected = None
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        if expected is None and os.path.exists(expected_file):
            with open(expected_file) as f:
                text = f.read().strip()
            expected = int(text) if text else None
        if expected is not None and received >= expected:
            break
        while True:
            if len(buf) >= 2:
                n = buf[1] & 0x7F
                off = 2
                if n == 126:
                    n, off = struct.unpack(">H", buf[2:4])[0], 4
                elif n == 127:
                    n, off = struct.unpack(">Q", buf[2:10])[0], 10
                if len(buf) >= off + n:
                    opcode, payload, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
                    if opcode == 1:
                        frame = json.loads(payload)
                        if frame.get("type") == "event":
                            seq = frame["seq"]
                            if last is not None and seq != last + 1:
                                gaps += 1
                            first = seq if first is None else first
                            last = seq
                            received += 1
                    continue
            break
        try:
            data = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
    print(f"received {received}, gaps {gaps}, first {first}, last {last}, expected {expected}")
    sys.exit(0 if expected is not None and received == expected and gaps == 0 else 1)

main()
