"""Malformed HTTP on raw sockets, generated from a seed, and a player that reports what came back.

What an HTTP library will not send: broken request lines, huge and malformed headers, bad chunked
encoding, wrong or conflicting Content-Length, pipelined garbage, clients that leave at every
stage of a request (mid-line, mid-headers, mid-body, after the body, with a reset), and slow
clients (slowloris headers, slow bodies, idle connections) against the header, body and
keep-alive timeouts. Every answer should be 2xx or 4xx, or the connection closed: never a 5xx.
The cases are played by rawhttp.play.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from bert_api.bench.rawhttp import Case

BODY = b'{"inputs": ["hello world"]}'
HOST = b"host: 127.0.0.1\r\n"
H2C_UPGRADE = (
    b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
    b"http2-settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"
)
WEBSOCKET_UPGRADE = (
    b"connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n"
    b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


def post(path: bytes, body: bytes, headers: bytes = b"") -> bytes:
    head = b"POST " + path + b" HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
    return head + b"content-length: %d\r\n" % len(body) + headers + b"\r\n" + body


def get(path: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\n" + HOST + headers + b"\r\n"


def chunked(chunks: list[bytes], tail: bytes = b"0\r\n\r\n") -> bytes:
    head = b"POST /embed HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
    return head + b"transfer-encoding: chunked\r\n\r\n" + b"".join(chunks) + tail


def _request_line(rng: random.Random) -> bytes:
    choices: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randint(1, 2000)) + b"\r\n\r\n",
        lambda: b"GET\r\n\r\n",
        lambda: b"GET /\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n\r\n",
        lambda: rng.choice(
            [
                b"GET / HTTP/9.9",
                b"GET / HTTP/0.9",
                b"GET / FOO/1.1",
                b"G ET / HTTP/1.1",
                b"GET  /health  HTTP/1.1",
                b"GET /health HTTP/1.1 extra",
            ]
        )
        + b"\r\n\r\n",
        lambda: b"get /health HTTP/1.1\r\n" + HOST + b"\r\n",
        lambda: b"\r\n\r\n" + get(b"/health"),
        lambda: b"GET /health HTTP/1.1\nhost: x\n\n",
        lambda: b"GET /health HTTP/1.1\rhost: x\r\r",
        lambda: b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n",
        lambda: b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n" + HOST + b"\r\n",
        lambda: get(b"http://elsewhere.example/health"),
        lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(64),
        lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(200),
        lambda: rng.choice([b"DELETE", b"PUT", b"PATCH", b"TRACE", b"FOO", b"HEAD"])
        + b" /embed HTTP/1.1\r\n"
        + HOST
        + b"\r\n",
        lambda: get(b"/" + b"a" * rng.choice([8_000, 64_000, 1_000_000])),
        lambda: get(b"/embed?x=" + b"y" * rng.choice([8_000, 100_000])),
        lambda: get(
            rng.choice(
                [
                    b"/%zz",
                    b"/%00",
                    b"/../../etc/passwd",
                    b"/\xff\xfe",
                    b"/em bed",
                    b"/embed#frag",
                    b"//embed",
                    b"/v2/models/%2e%2e/ready",
                    b"/v1/models/" + b"a" * 5000,
                    b"/v2/models//ready",
                    b"/health\x00",
                ]
            )
        ),
        lambda: post(
            rng.choice(
                [
                    b"/v1/models/bert:predict:x",
                    b"/v1/models/:predict",
                    b"/v2/models//infer",
                    b"/v2/models/bert/infer/x",
                    b"/embed/",
                    b"/EMBED",
                    b"/embed;x",
                    b"/v1/models/bert%3Apredict",
                ]
            ),
            BODY,
        ),
    ]
    return rng.choice(choices)()


def _headers(rng: random.Random) -> bytes:
    size = rng.choice([8_000, 64_000, 1_000_000])
    choices: list[Callable[[], bytes]] = [
        lambda: get(b"/health", b"x-big: " + b"a" * size + b"\r\n"),
        lambda: get(
            b"/health", b"".join(b"x-h%d: v\r\n" % i for i in range(rng.choice([100, 1000, 10000])))
        ),
        lambda: get(b"/health", b"no-colon-here\r\n"),
        lambda: get(b"/health", b"x-space : v\r\n"),
        lambda: get(
            b"/health", rng.choice([b"a b: c\r\n", b"\x00: x\r\n", b": x\r\n", b"x\x7f: y\r\n"])
        ),
        lambda: get(b"/health", b"x-fold: a\r\n  b\r\n"),
        lambda: get(b"/health", b"x-bytes: \xff\xfe\x00\x01\r\n"),
        lambda: b"GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        lambda: b"GET /health HTTP/1.1\r\nhost: " + b"h" * size + b"\r\n\r\n",
        lambda: post(b"/embed", BODY, b"expect: 100-continue\r\n"),
        lambda: post(b"/embed", BODY, b"expect: something-else\r\n"),
        lambda: get(b"/health", H2C_UPGRADE),
        lambda: get(b"/health", WEBSOCKET_UPGRADE),
        lambda: post(
            b"/embed",
            BODY,
            b"transfer-encoding: "
            + rng.choice([b"gzip", b"chunked, gzip", b"identity", b"chunked", b"xchunked"])
            + b"\r\n",
        ),
        lambda: post(b"/embed", BODY, b"content-type: text/plain\r\n"),
        lambda: post(b"/embed", BODY, b"x-" + b"n" * size + b": v\r\n"),
        lambda: post(
            b"/embed", BODY, b"authorization: Bearer " + rng.randbytes(40).hex().encode() + b"\r\n"
        ),
    ]
    return rng.choice(choices)()


def _chunked(rng: random.Random) -> bytes:
    half = len(BODY) // 2
    valid = [
        b"%x\r\n%s\r\n" % (half, BODY[:half]),
        b"%x\r\n%s\r\n" % (len(BODY) - half, BODY[half:]),
    ]
    choices: list[Callable[[], bytes]] = [
        lambda: chunked(valid),
        lambda: chunked(
            [
                rng.choice([b"zz", b"-1", b"f" * 20, b" 5", b"0x5", b"5 5"])
                + b"\r\n"
                + BODY
                + b"\r\n"
            ]
        ),
        lambda: chunked(
            [
                b"%x;%s\r\n%s\r\n"
                % (len(BODY), b"e=" + b"a" * rng.choice([100, 10_000, 100_000]), BODY)
            ]
        ),
        lambda: chunked([b"%x\r\n%s" % (len(BODY), BODY)]),
        lambda: chunked([b"%x\r\n%s\r\n" % (len(BODY) - 5, BODY)]),
        lambda: chunked(valid, b"0\r\n"),
        lambda: chunked(valid, b"0\r\nx-trailer: 1\r\nbad trailer\r\n\r\n"),
        lambda: chunked([b"%x\r\n%s\r\n" % (len(BODY) * 2, BODY)], b""),
        lambda: chunked([b"100000\r\n" + b" " * 0x100000 + b"\r\n"] * 3),
        lambda: chunked([*valid, b"0\r\n\r\n"], b"GARBAGE\r\n\r\n"),
    ]
    return rng.choice(choices)()


def _content_length(rng: random.Random) -> bytes:
    head = b"POST /embed HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
    value = rng.choice(
        [b"abc", b"-1", b"1e3", b" 5", b"5 5", b"+5", b"0x10", b"99999999999999999999"]
    )
    choices: list[Callable[[], bytes]] = [
        lambda: head + b"content-length: " + value + b"\r\n\r\n" + BODY,
        lambda: head + b"content-length: 5\r\ncontent-length: %d\r\n\r\n" % len(BODY) + BODY,
        lambda: head
        + b"content-length: %d\r\ntransfer-encoding: chunked\r\n\r\n" % len(BODY)
        + BODY,
        lambda: head + b"content-length: %d\r\n\r\n" % (len(BODY) - 7) + BODY + b"\r\n\r\n",
        lambda: head + b"content-length: 5\r\n\r\n" + BODY + get(b"/health"),
        lambda: head
        + b"content-length: %d\r\n\r\n" % rng.choice([10**12, 2 * 1024 * 1024 + 1])
        + BODY,
        lambda: head + b"content-length: 0\r\n\r\n",
        lambda: get(b"/health", b"content-length: 10\r\n") + b"0123456789",
    ]
    return rng.choice(choices)()


def _pipelined(rng: random.Random) -> bytes:
    choices: list[Callable[[], bytes]] = [
        lambda: get(b"/health") * rng.randint(2, 100),
        lambda: post(b"/embed", BODY) + rng.randbytes(rng.randint(1, 500)),
        lambda: post(b"/embed", BODY) * rng.randint(2, 10),
        lambda: get(b"/health") + b"GET /health HTTP/1.0\r\n\r\n",
    ]
    return rng.choice(choices)()


def fast_cases(count: int, seed: int) -> Iterator[Case]:
    """`count` cases that end within a second or so (no deliberate slowness)."""
    rng = random.Random(seed)
    makers = {
        "request line": _request_line,
        "headers": _headers,
        "chunked": _chunked,
        "content-length": _content_length,
        "pipelining": _pipelined,
    }
    for _ in range(count):
        if rng.random() < 0.15:
            # An early disconnect: part of a valid request (or all of it), then close or reset.
            whole = post(rng.choice([b"/embed", b"/v1/embeddings", b"/tokenize"]), BODY)
            then = rng.choice(["close", "reset"])
            if rng.random() < 0.25:
                # Pipelined requests, and the client leaves while the first one runs.
                yield Case("early disconnect, pipelined", (whole * rng.randint(2, 4),), then=then)
                continue
            cut = rng.choice(
                [rng.randrange(1, 20), whole.index(b"\r\n\r\n"), len(whole) - 5, len(whole)]
            )
            yield Case("early disconnect", (whole[:cut],), then=then)
            continue
        family = rng.choice(list(makers))
        yield Case(f"http: {family}", (makers[family](rng),))


def slow_cases(count: int) -> Iterator[Case]:
    """Slow clients against the header and body timeouts, and idle connections."""
    for n in range(count):
        kind = n % 4
        if kind == 0:
            yield Case("slow: slowloris headers", tuple(bytes([b]) for b in get(b"/health")), 0.7)
        elif kind == 1:
            whole = post(b"/embed", BODY)
            split = whole.index(b"\r\n\r\n") + 4
            yield Case("slow: slow body", (whole[:split], *(bytes([b]) for b in BODY)), 1.5)
        elif kind == 2:
            yield Case("slow: idle connection", ())
        else:
            whole = post(b"/embed", BODY)
            yield Case("slow: body never completed", (whole[:-5],))
