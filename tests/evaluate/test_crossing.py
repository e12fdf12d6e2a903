"""Plain data across the judge/solution boundary: the codec on its own, on the host (no submission code runs)."""

from __future__ import annotations

import json
import math
import os
from collections import Counter, OrderedDict, defaultdict, namedtuple

import pytest

from agentevo.evaluate.crossing import (
    MAX_DEPTH,
    CrossingError,
    Decoder,
    Encoder,
    PeerGone,
    ProtocolError,
    read_frame,
    write_frame,
)


def no_handles(obj):
    raise CrossingError(f"no handle for {type(obj).__name__}")


def roundtrip(value):
    data = json.loads(json.dumps(Encoder(no_handles).encode(value)))  # through real JSON text
    return Decoder(no_handles, no_handles).decode(data)


PLAIN = [
    None, True, False, 0, -7, 10**80, 1.5, -0.0, math.inf, -math.inf, 2 + 3j, "", "héllo\n\x00", b"\x00\xff",
    bytearray(b"ab"), range(1, 10, 3), [1, [2, [3]]], (1, (2,)), {"a": 1, 2: [3], (4, 5): None},
    {1, 2, "x"}, frozenset({(1, 2)}), [(), [], {}, set()],
]  # fmt: skip


@pytest.mark.parametrize("value", PLAIN, ids=[repr(v)[:30] for v in PLAIN])
def test_plain_data_crosses_with_its_exact_type(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)
    assert repr(back) == repr(value)  # -0.0, nested tuple/list structure and key types survive


def test_nan_crosses():
    assert math.isnan(roundtrip(float("nan")))


class RiggedInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class RiggedStr(str):
    def __eq__(self, other):
        return True

    def __str__(self):
        return "something else"

    __hash__ = str.__hash__


class RiggedList(list):
    def __iter__(self):
        return iter([1, 2, 3])

    def __eq__(self, other):
        return True


def test_subclasses_cross_as_their_base_type_with_their_real_value():
    Point = namedtuple("Point", "x y")
    cases = [
        (RiggedInt(5), 5, int), (RiggedStr("abc"), "abc", str), (RiggedList([9]), [9], list),
        (OrderedDict(a=1), {"a": 1}, dict), (defaultdict(int, b=2), {"b": 2}, dict),
        (Counter("aab"), {"a": 2, "b": 1}, dict), (Point(1, 2), (1, 2), tuple),
    ]  # fmt: skip
    for value, expected, kind in cases:
        back = roundtrip(value)
        assert type(back) is kind and back == expected
    assert roundtrip(RiggedInt(5)) != 6  # the rigged __eq__ stayed behind


def test_values_that_cannot_cross_say_why():
    cyclic: list = [1]
    cyclic.append(cyclic)
    with pytest.raises(CrossingError, match="contains itself"):
        roundtrip(cyclic)
    with pytest.raises(CrossingError, match="no handle for function"):
        roundtrip([len, lambda: 1][1])
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(CrossingError, match="nested"):
        roundtrip(deep)


MALFORMED = [
    {"a": 1},  # a JSON object is never a value
    [],  # no tag
    [1, 2],  # a tag must be a string
    ["zz", 1],  # unknown tag
    ["d", 1],  # odd dict
    ["d", ["l"], 1],  # unhashable key
    ["s", ["l"]],  # unhashable set member
    ["c", "1", 2],  # complex parts must be numbers
    ["r", 1, 2],  # range needs three ints
    ["b", "zz"],  # not hex
    ["o", 3],  # a handle to an object that was never shared
    ["o", "x"],
]


@pytest.mark.parametrize("data", MALFORMED, ids=[json.dumps(d) for d in MALFORMED])
def test_the_decoder_refuses_anything_an_honest_encoder_never_sends(data):
    def never_shared(number):
        raise ProtocolError(f"object {number} was never shared")

    with pytest.raises(ProtocolError):
        Decoder(no_handles, never_shared).decode(data)


def test_frames_round_trip_and_refuse_garbage():
    read_fd, write_fd = os.pipe()
    try:
        write_frame(write_fd, {"q": 1, "v": ["l", 1, 2]})
        assert read_frame(read_fd) == {"q": 1, "v": ["l", 1, 2]}
        os.write(write_fd, (5).to_bytes(4, "big") + b"{nope")
        with pytest.raises(ProtocolError, match="not JSON"):
            read_frame(read_fd)
        os.write(write_fd, (1 << 30).to_bytes(4, "big"))
        with pytest.raises(ProtocolError, match="announced"):
            read_frame(read_fd)
    finally:
        os.close(write_fd)
    with pytest.raises(PeerGone):
        read_frame(read_fd)
    os.close(read_fd)
