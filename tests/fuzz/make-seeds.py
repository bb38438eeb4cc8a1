#!/usr/bin/env python3
# make-seeds.py: writes the seed corpus of the fuzz harnesses, tests/fuzz/corpus/
#
# The seeds are committed; this script says what each one is and makes them
# again (./make-seeds.py from tests/fuzz/). Inputs picked from a fuzzing
# run's corpus (fuzzed-*) and inputs that once crashed a harness
# (regress-*) are not made here and are left alone.
#
# SPDX-License-Identifier: MIT

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# fuzz-ws-frame.c: byte 0 picks max-message-bytes from this list.
MAX_MESSAGES = [64, 125, 126, 1000, 65535, 65536, 1024 * 1024]

UUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def write(harness, name, data):
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.join(CORPUS, harness)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# ---- ws-frame -------------------------------------------------------------

def frame(opcode, payload=b"", fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0,
          length=None, length_bytes=None):
    """A client frame. length/length_bytes override the declared length and
    its encoding (2, 4 or 10 header bytes) to make broken or unusual ones."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    if length_bytes is None:
        length_bytes = 2 if n < 126 else 4 if n <= 0xFFFF else 10
    first = (0x80 if fin else 0) | rsv | opcode
    masked = 0x80 if mask is not None else 0
    if length_bytes == 2:
        header = bytes([first, masked | n])
    elif length_bytes == 4:
        header = bytes([first, masked | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first, masked | 127]) + struct.pack(">Q", n)
    if mask is None:
        return header + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


def ws(name, stream, max_message=1000, pieces=(0,)):
    """pieces: read sizes, cycled; 0 = all the rest in one read."""
    selector = MAX_MESSAGES.index(max_message)
    prefix = bytes([selector, len(pieces) - 1]) + bytes(pieces)
    write("ws-frame", name, prefix + stream)


TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
request = json.dumps({"type": "ping", "request_id": "r1"}, separators=(",", ":"))


def ws_seeds():
    ws("text", frame(TEXT, request))
    ws("text-unmasked-key", frame(TEXT, request, mask=b"\0\0\0\0"))
    ws("text-one-byte-reads", frame(TEXT, request), pieces=(1,))
    ws("text-126", frame(TEXT, "x" * 126), pieces=(3, 50))
    ws("text-65535", frame(TEXT, "y" * 300, length_bytes=4), max_message=65535, pieces=(2, 255))
    ws("text-64bit-length", frame(TEXT, "short", length_bytes=10), pieces=(5,))
    ws("text-utf8", frame(TEXT, "caf\u00e9 \u65e5\u672c \U0001F600"), pieces=(1, 2, 3))
    ws("text-nul", frame(TEXT, b"a\0bcdefgh\0i"))
    ws("text-invalid-utf8", frame(TEXT, b"ok\xc3\x28"))
    ws("text-empty", frame(TEXT, b""))
    ws("binary", frame(BINARY, bytes(range(40))))
    ws("ping", frame(PING, "hello"))
    ws("ping-125", frame(PING, "p" * 125), pieces=(100,))
    ws("pong-empty", frame(PONG))
    ws("close-empty", frame(CLOSE))
    ws("close-1000-reason", frame(CLOSE, b"\x03\xe8bye"))
    ws("close-4000", frame(CLOSE, b"\x0f\xa0"))
    ws("close-1005-invalid", frame(CLOSE, b"\x03\xed"))
    ws("close-one-byte", frame(CLOSE, b"\x03"))
    ws("close-reason-not-utf8", frame(CLOSE, b"\x03\xe8\xff"))
    ws("close-then-more", frame(CLOSE, b"\x03\xe9") + frame(TEXT, "after close"))
    ws("fragments", frame(TEXT, '{"type":', fin=False) + frame(PING, "p") +
       frame(CONT, '"pi', fin=False) + frame(CONT, 'ng"}') + frame(TEXT, "next"),
       pieces=(1, 7, 2))
    ws("fragments-binary", frame(BINARY, b"\x00\x01", fin=False) + frame(CONT, b"\x02"))
    ws("fragments-utf8-split", frame(TEXT, b"caf\xc3", fin=False) + frame(CONT, b"\xa9"))
    ws("fragments-empty", frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) +
       frame(CONT, b""))
    ws("fragments-too-big", frame(TEXT, "a" * 40, fin=False) + frame(CONT, "b" * 40),
       max_message=64)
    ws("continuation-first", frame(CONT, "x"))
    ws("interleaved-message", frame(TEXT, "ab", fin=False) + frame(TEXT, "cd"))
    ws("unmasked", frame(TEXT, "x", mask=None))
    ws("rsv1", frame(TEXT, "x", rsv=0x40))
    ws("opcode-3", frame(0x3, "x"))
    ws("ping-fragmented", frame(PING, "x", fin=False))
    ws("ping-too-long", frame(PING, "p" * 126))
    # Refused on its header, stepped over, then the client's close is read.
    ws("too-big-then-close", frame(TEXT, "z" * 100) + frame(CLOSE, b"\x03\xe8"),
       max_message=64, pieces=(9, 30))
    ws("too-big-64bit", frame(BINARY, b"", length=1 << 40, length_bytes=10) + b"\0" * 20)
    ws("several", frame(TEXT, "one") + frame(PING) + frame(TEXT, "two") + frame(PONG, "x") +
       frame(BINARY, b"\xff") + frame(CLOSE, b"\x03\xe8"), pieces=(4, 1, 13))
    ws("trailing-partial", frame(TEXT, "whole") + frame(TEXT, "partial")[:7])


# ---- protocol -------------------------------------------------------------

def protocol_seeds():
    seeds = {
        "subscribe": {"type": "subscribe", "topic": "orders", "client_id": "c1",
                      "last_n": 5, "request_id": "r1"},
        "subscribe-no-last-n": {"type": "subscribe", "topic": "a.b:c_d-1", "client_id": "\u00e9"},
        "subscribe-since": {"type": "subscribe", "topic": "orders", "client_id": "c1",
                            "since": {"seq": 41, "epoch": "0123456789abcdef"}, "last_n": 3},
        "subscribe-since-odd-epoch": {"type": "subscribe", "topic": "o", "client_id": "c",
                                      "since": {"epoch": "0123456789ABCDEF", "seq": 0}},
        "subscribe-since-bad": {"type": "subscribe", "topic": "o", "client_id": "c",
                                "since": {"seq": -1, "epoch": 5}},
        "unsubscribe": {"type": "unsubscribe", "topic": "orders", "client_id": "c1",
                        "request_id": "r2"},
        "publish": {"type": "publish", "topic": "orders", "request_id": "r3",
                    "message": {"id": UUID, "payload": {"n": [1, 2.5e3, True, None, "s"]}}},
        "publish-string-payload": {"type": "publish", "topic": "t",
                                   "message": {"payload": "a\"b\\c\u0001", "id": UUID.upper()}},
        "ping": {"type": "ping", "request_id": "\u65e5\"q"},
        "ping-bare": {"type": "ping"},
        "unknown-type": {"type": "pong"},
        "type-number": {"type": 1},
        "missing-type": {"topic": "orders"},
        "topic-invalid": {"type": "subscribe", "topic": "a b", "client_id": "c"},
        "topic-129": {"type": "subscribe", "topic": "t" * 129, "client_id": "c"},
        "topic-128": {"type": "unsubscribe", "topic": "t" * 128, "client_id": "c"},
        "client-id-empty": {"type": "subscribe", "topic": "orders", "client_id": ""},
        "client-id-number": {"type": "subscribe", "topic": "orders", "client_id": 7},
        "last-n-fraction": {"type": "subscribe", "topic": "o", "client_id": "c", "last_n": 1.5},
        "last-n-negative": {"type": "subscribe", "topic": "o", "client_id": "c", "last_n": -1},
        "message-not-object": {"type": "publish", "topic": "o", "message": [UUID]},
        "message-no-payload": {"type": "publish", "topic": "o", "message": {"id": UUID}},
        "message-bad-id": {"type": "publish", "topic": "o", "message": {"id": "x", "payload": 1}},
        "request-id-number": {"type": "ping", "request_id": 5},
        "array": [{"type": "ping"}],
    }
    for name, value in seeds.items():
        write("protocol", name, json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    raw = {
        # Escapes the parser must decode; whitespace everywhere.
        "escaped-fields": ' { "\\u0074ype" : "\\u0073ubscribe" , "topic" : "\\u006frders" ,'
                          ' "client_id" : "a\\u0000b" , "last_n" : 18446744073709551616 } ',
        "escaped-uuid": '{"type":"publish","topic":"o","message":{"id":"\\u0033f2504e0-4f89-'
                        '41d3-9a0c-0305e82c3301","payload":null}}',
        "last-n-minus-zero": '{"type":"subscribe","topic":"o","client_id":"c","last_n":-0}',
        "lone-surrogate": '{"type":"subscribe","topic":"o","client_id":"\\ud800x"}',
        "surrogate-pair": '{"type":"ping","request_id":"\\ud83d\\ude00"}',
        "duplicate-keys": '{"type":"subscribe","type":"ping","request_id":"a","request_id":"b"}',
        "single-quotes": "{'type':'ping'}",
        "comment": '{"type":"ping"/* c */}',
        "trailing-comma": '{"type":"ping",}',
        "leading-zero": '{"type":"subscribe","topic":"o","client_id":"c","last_n":01}',
        "big-number": '{"type":"publish","topic":"o","message":{"id":"' + UUID +
                      '","payload":1e400}}',
        "truncated": '{"type":"publish","topic":"o","message":{"id":"' + UUID + '","payload":',
        "raw-control": '{"type":"ping","request_id":"a\tb"}',
        "empty": "",
        "deep": "[" * 512 + "]" * 512,
        "too-deep": '{"a":' * 513 + "1" + "}" * 513,
        "too-many-fields": "{" + ",".join('"f%d":%d' % (i, i) for i in range(64)) +
                           ',"request_id":"late","type":"ping"}',
        "many-fields-request-id-first": '{"request_id":"early",' +
                                        ",".join('"f%d":0' % i for i in range(70)) + "}",
    }
    for name, text in raw.items():
        write("protocol", name, text)
    write("protocol", "invalid-utf8", b'{"type":"ping","request_id":"\xff"}')
    write("protocol", "nul-byte", b'{"type":"ping"}\0')


# ---- rest -----------------------------------------------------------------

def rest_seeds():
    bodies = {
        "body": '{"name":"orders"}',
        "body-escaped": ' {"name" : "\\u0065sc"} \n',
        "body-extra-fields": '{"a":{"name":"inner"},"name":"x:y.z_-1","b":[1,"x"]}',
        "body-duplicate": '{"name":"first","name":"last"}',
        "body-name-invalid": '{"name":"a b"}',
        "body-name-nul": '{"name":"a\\u0000b"}',
        "body-name-null": '{"name":null}',
        "body-name-number": '{"name":5}',
        "body-not-object": '["orders"]',
        "body-too-many-fields": "{" + ",".join('"f%d":0' % i for i in range(64)) +
                                ',"name":"orders"}',
        "body-whitespace": " \t\r\n",
        "body-json-glib-lax": "{'name':'x1'} /* c */",
        "publish": '{"payload":{"order_id":"ORD-1","n":[1,2.5e3,true,null]}}',
        "publish-id": '{"id":"' + UUID + '","payload":"x"}',
        "publish-id-escaped": '{"id":"\\u0033f2504e0-4f89-41d3-9a0c-0305e82c3301","payload":1}',
        "publish-id-null": '{"payload":null,"id":null}',
        "publish-id-invalid": '{"payload":1,"id":"not-a-uuid"}',
        "publish-no-payload": '{"id":"' + UUID + '"}',
        "publish-big-number": '{"payload":123456789012345678901234567890e-400}',
        "count-max": "18446744073709551615",
        "count-overflow": "18446744073709551616",
        "count-plus": "+1",
        "count-minus-zero": "-0",
        "count-space": " 7",
        "path-plain": "orders",
        "path-escaped": "a%3Ab%2e_",
        "path-utf8": "caf%C3%A9",
        "path-invalid-utf8": "%FF%FE",
        "path-nul": "a%00b",
        "path-bad-escape": "a%ZZ%4",
        "path-dot-dot": "%2F..%2Fstats",
        "path-slash": "a/b",
        "path-space": "a%20b",
        "empty": "",
    }
    for name, text in bodies.items():
        write("rest", name, text)


# ---- config ---------------------------------------------------------------

def config_seeds():
    files = {
        "full": "# every key\n[pubsub]\nlisten=127.0.0.1:8080\napi-key=S3CRET-KEY_42\n"
                "queue-size=100\nhistory-size=0\nheartbeat-interval=86400\n"
                "max-message-bytes=64\nmax-connections=1000000\nmax-topics=10000000\n"
                "shutdown-grace=3600\nbus=none\n",
        "empty": "",
        "comments-only": "# nothing\n\n; nor here\n",
        "group-only": "[pubsub]\n",
        "unknown-group": "[pubsub]\nbus=system\n[other]\nx=1\n",
        "unknown-key": "[pubsub]\nqueue_size=5\n",
        "locale-key": "[pubsub]\napi-key[de]=geheim\n",
        "key-before-group": "listen=:0\n[pubsub]\n",
        "duplicate-key": "[pubsub]\nqueue-size=1\nqueue-size=2\n",
        "duplicate-group": "[pubsub]\nqueue-size=1\n[pubsub]\nhistory-size=2\n",
        "spaces": "[pubsub]\n  queue-size  =  7  \nbus = session \n",
        "escapes": "[pubsub]\napi-key=a\\sb\\tc\\nd\\\\e\\;\n",
        "bad-escape": "[pubsub]\napi-key=a\\q\n",
        "api-key-empty": "[pubsub]\napi-key=\n",
        "listen-v6": "[pubsub]\nlisten=[::1]:0\n",
        "listen-all": "[pubsub]\nlisten=:65535\n",
        "listen-localhost": "[pubsub]\nlisten=localhost:80\n",
        "listen-hostname": "[pubsub]\nlisten=example.org:80\n",
        "listen-port-big": "[pubsub]\nlisten=127.0.0.1:65536\n",
        "listen-no-port": "[pubsub]\nlisten=127.0.0.1\n",
        "listen-bracket": "[pubsub]\nlisten=[::1\n",
        "number-too-big": "[pubsub]\nmax-message-bytes=67108865\n",
        "number-too-small": "[pubsub]\nqueue-size=0\n",
        "number-sign": "[pubsub]\nqueue-size=+5\n",
        "number-huge": "[pubsub]\nmax-topics=99999999999999999999999\n",
        "number-hex": "[pubsub]\nshutdown-grace=0x10\n",
        "bus-bad": "[pubsub]\nbus=Session\n",
        "not-utf8-value": b"[pubsub]\napi-key=\xff\xfe\n",
        "not-utf8-key": b"[pubsub]\nk\xffey=1\n",
        "not-utf8-group": b"[pub\xffsub]\n",
        "no-equals": "[pubsub]\nqueue-size\n",
        "crlf": "[pubsub]\r\nqueue-size=3\r\n",
        "nul-byte": b"[pubsub]\nqueue-size=3\0\n",
    }
    for name, text in files.items():
        write("config", name, text)


if __name__ == "__main__":
    ws_seeds()
    protocol_seeds()
    rest_seeds()
    config_seeds()
