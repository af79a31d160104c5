"""Malformed and hostile JSON bodies for every POST route, generated from a seed.

Well-formed HTTP carrying bodies a fuzzer of the JSON layer would send: deep nesting in each
field (deep enough to exhaust a recursive decoder: ~960 levels used to be a 500), values of the
wrong type, numbers no float or int holds, invalid UTF-8 and lone surrogates, duplicate keys,
truncated documents, trailing garbage, odd texts at the character limits, odd Content-Types and
X-Request-Timeout values. Each case is one request; every answer should be 2xx or 4xx.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

from bert_api.bench.rawhttp import request_bytes

MODEL = "bert"
# Extra request headers; a None Content-Type sends none.
Headers = dict[str, str | None]
# Per route: a valid body and the fields a mutation may replace.
ROUTES: dict[str, dict[str, object]] = {
    "/embed": {"inputs": ["hello world"], "normalize": True, "pooling": "mean", "truncate": True},
    "/tokenize": {"inputs": ["hello world"]},
    "/fill-mask": {"inputs": ["paris is the [MASK] of france."], "top_k": 3},
    "/classify": {"inputs": ["great film"]},
    "/rerank": {"query": "what is it", "texts": ["a thing", "another"], "return_text": True},
    "/v1/embeddings": {"input": ["hello"], "model": MODEL, "encoding_format": "float"},
    f"/v1/models/{MODEL}:predict": {"instances": [{"text": "hi"}], "parameters": {"task": "embed"}},
    f"/v2/models/{MODEL}/infer": {
        "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
        "id": "x",
    },
}

ODD_VALUES: tuple[str, ...] = (
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "-0",
    '""',
    '"x"',
    "[]",
    "{}",
    "[[]]",
    "[null]",
    "[1, 2]",
    '{"a": 1}',
    "1e400",
    "-1e400",
    "1" * 400,
    "-" + "9" * 400,
    "0.0000000000001e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    "0x10",
    "01",
    "+1",
    ".5",
    "1.",
    "1e",
    '"\\ud800"',
    '["\\udc00"]',
    '["\\ud800\\ud800"]',
    '["\\u0000"]',
    '["a\\u0000b"]',
    '"' + "a" * 70000 + '"',
    '["' + "a" * 20000 + '"]',
    '["' + "a" * 20001 + '"]',
    '["' + "\\u00e9" * 20000 + '"]',
    '[""]',
    '["   "]',
    '["[MASK]"]',
    '["[CLS] [SEP] [PAD] [UNK]"]',
    '["\\ud83d\\ude00" ]',
    '["\\u200b\\u200b"]',
    '["\\u202e\\u0645\\u0631\\u062d\\u0628\\u0627"]',
    '["' + "\u0301" * 99 + '"]',
    "[" + ", ".join(['"x"'] * 257) + "]",
    "[" + ", ".join(['"x"'] * 256) + "]",
    '[["a", "b"]]',
    '[["a"]]',
    '[["a", "b", "c"]]',
    '[{"text": 1}]',
    '[{"text": "a", "x": []}]',
)
RAW_BODIES: tuple[bytes, ...] = (
    b"",
    b" ",
    b"null",
    b"[]",
    b"{}",
    b'"x"',
    b"0",
    b"{",
    b"}",
    b"[",
    b"{]",
    b'{"inputs"',
    b'{"inputs":',
    b'{"inputs": ["a"]',
    b'{"inputs": ["a"]}}',
    b'{"inputs": ["a"]}x',
    b'{"inputs": ["a"]}{"inputs": ["b"]}',
    b'\xef\xbb\xbf{"inputs": ["a"]}',
    b'{"inputs": ["\xff\xfe"]}',
    b'{"inputs": ["\xc0\xaf"]}',
    b'{"inputs": ["\xed\xa0\x80"]}',
    b'{"inputs": ["\xf4\x90\x80\x80"]}',
    b'{"inputs": ["a\nb\tc"]}',
    b'{"inputs": ["\x00"]}',
    b"\x00" * 64,
    b"\xff" * 64,
    b"{'inputs': ['a']}",
    b'{inputs: ["a"]}',
    b'{"inputs": ["a",]}',
    b'{"inputs": ["a"],}',
    b'{"inputs": ["a"] "x": 1}',
    b" " * 100_000 + b'{"inputs": ["a"]}',
    b'{"inputs": ["a"], "inputs": 5}',
    b'{"inputs": 5, "inputs": ["a"]}',
    b'{"inputs": ["a"], "normalize": true, "normalize": "no"}',
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    b"inputs=a&x=1",
    b"--x\r\n\r\nhello\r\n--x--",
)
CONTENT_TYPES: tuple[str | None, ...] = (
    None,
    "text/plain",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json;;;",
    "APPLICATION/JSON",
    "application/jsonx",
    "application/problem+json",
    "*/*",
    "",
    "\x7f",
)
BUDGETS = (
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "abc",
    "",
    " 5 ",
    "3601",
    "0.000001",
    "1e-300",
    "5,5",
    "0x10",
    "1" * 500,
    "30",
)


def nested(depth: int, rng: random.Random) -> str:
    """A value nested `depth` levels deep, in arrays or objects."""
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def with_field(base: dict[str, object], key: str, raw_value: str) -> bytes:
    """`base` as JSON with `key` set to `raw_value`, which is inserted verbatim."""
    fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in base.items() if k != key]
    fields.append(f"{json.dumps(key)}: {raw_value}")
    return ("{" + ", ".join(fields) + "}").encode("utf-8", "surrogatepass")


def _wrong_type(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    key = rng.choice([*base, "unknown_field"])
    return with_field(base, key, rng.choice(ODD_VALUES)), {}


def _deep(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    depth = rng.choice((100, 500, 959, 960, 961, 1000, 2000, 10_000, 100_000, 300_000))
    return with_field(base, rng.choice(list(base)), nested(depth, rng)), {}


def _deep_inside(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    depth = rng.choice((960, 1000, 5000, 50_000))
    return with_field(base, rng.choice(list(base)), "[" + nested(depth, rng) + ', "x"]'), {}


def _raw(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    return rng.choice(RAW_BODIES), {}


def _truncated(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    body = json.dumps(base).encode()
    return body[: rng.randrange(len(body))], {}


def _content_type(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    return json.dumps(base).encode(), {"content-type": rng.choice(CONTENT_TYPES)}


def _budget(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    return json.dumps(base).encode(), {"x-request-timeout": rng.choice(BUDGETS)}


def _valid(rng: random.Random, base: dict[str, object]) -> tuple[bytes, Headers]:
    return json.dumps(base).encode(), {}


MUTATIONS: dict[str, Callable[[random.Random, dict[str, object]], tuple[bytes, Headers]]] = {
    "wrong type or odd value": _wrong_type,
    "deep nesting": _deep,
    "deep nesting inside a list": _deep_inside,
    "malformed document": _raw,
    "truncated document": _truncated,
    "content type": _content_type,
    "X-Request-Timeout": _budget,
    "valid": _valid,
}


def json_cases(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` (family, raw request) pairs over every POST route, the same for the same seed."""
    rng = random.Random(seed)
    families = list(MUTATIONS)
    weights = [10, 6, 3, 6, 4, 3, 3, 1]
    for _ in range(count):
        family = rng.choices(families, weights)[0]
        path = rng.choice(list(ROUTES))
        body, extra = MUTATIONS[family](rng, ROUTES[path])
        chosen = {"content-type": "application/json", **extra}
        headers = {name: value for name, value in chosen.items() if value is not None}
        yield f"json: {family}", request_bytes("POST", path, body, headers)
