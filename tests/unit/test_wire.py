"""The init's MessagePack codec writes and reads exactly the bytes msgspec uses for every sync
message, so the lean init and the msgspec-typed runtime understand each other."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_sandbox.process import messages as M
from nano_sandbox.process import wire

text = st.text(max_size=300)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)


@pytest.mark.parametrize(
    "msg",
    [
        M.Go(), M.MapsDone(), M.Abort(), M.RootfsReady(), M.Ready(),
        M.NeedMaps(pid=4242), M.Pid(pid=1), M.Pid(pid=2**31 - 1),
        M.Step(name="mount proc on /proc", t0=123456789012345, ns=1500, calls=['mount("proc", "/proc", "proc", 0, NULL)']),
        M.Step(name="x" * 40, t0=0, ns=0, calls=[]),
        M.Fail(step="mount proc on /proc", errno=1, message="Operation not permitted"),
        M.HooksDone(state_json=b'{"ociVersion":"1.3.0","id":"x","status":"created"}'),
        M.HooksDone(state_json=b"x" * 70000),
    ],
)
def test_same_bytes_as_msgspec(msg):
    fields = [getattr(msg, f) for f in msg.__struct_fields__]
    assert wire.message(type(msg).__name__, *fields) == M.encode(msg)
    assert wire.unpack(M.encode(msg)) == [type(msg).__name__, *fields]


@given(name=text, t0=st.integers(0, 2**63 - 1), ns=st.integers(0, 2**63 - 1), calls=st.lists(text, max_size=20))
def test_steps_round_trip_through_msgspec(name, t0, ns, calls):
    packet = wire.message("Step", name, t0, ns, calls)
    assert M.decode(packet) == M.Step(name=name, t0=t0, ns=ns, calls=calls)


@given(value=st.recursive(st.none() | st.booleans() | ints | text | st.binary(max_size=300), lambda c: st.lists(c, max_size=20), max_leaves=40))
def test_round_trip(value):
    assert wire.unpack(wire.pack(value)) == value


def test_garbage_is_an_error():
    with pytest.raises(ValueError):
        wire.unpack(b"\xc1")
    with pytest.raises(ValueError):
        wire.unpack(wire.pack(1) + b"\x00")
