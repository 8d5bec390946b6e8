"""The typed messages the runtime and the container init exchange over their SOCK_SEQPACKET
socket pair (one message per packet, msgspec MessagePack, tagged by class name).

Child → parent: :class:`Step` (a finished setup step, with its kernel calls when explaining),
:class:`NeedMaps` (write my uid/gid maps), :class:`Pid` (the init's host pid),
:class:`RootfsReady`, :class:`Ready`, :class:`Fail` (step, errno, message).
Parent → child: :class:`Go`, :class:`MapsDone`, :class:`HooksDone`, :class:`Abort`.
"""

from __future__ import annotations

import msgspec


class Msg(msgspec.Struct, tag=True, array_like=True):
    """Base of every sync message."""


class Go(Msg):
    """Parent → child: the init is in its cgroup; enter the namespaces."""


class NeedMaps(Msg):
    """Child → parent: I unshared a user namespace; write uid_map/gid_map of ``pid``."""

    pid: int


class MapsDone(Msg):
    """Parent → child: the id maps are written."""


class Pid(Msg):
    """Child → parent: the container's init has host pid ``pid`` (PID 1 inside when a new pid
    namespace was made)."""

    pid: int


class Step(Msg):
    """Child → parent: setup step ``name`` took ``ns`` nanoseconds from monotonic time ``t0``;
    ``calls`` are its kernel calls (filled only in explain mode)."""

    name: str
    t0: int
    ns: int
    calls: list[str] = []


class RootfsReady(Msg):
    """Child → parent: mounts are in place (before pivot_root): run the createRuntime hooks."""


class HooksDone(Msg):
    """Parent → child: prestart/createRuntime hooks ran; go on. ``state_json`` is the state
    document the init hands to the createContainer and startContainer hooks."""

    state_json: bytes = b""


class Ready(Msg):
    """Child → parent: setup is complete; the init now blocks on the exec fifo."""


class Fail(Msg):
    """Child → parent: setup step ``step`` failed with ``errno`` (0 if not an OS error)."""

    step: str
    errno: int
    message: str


class Abort(Msg):
    """Parent → child: give up (the parent failed); exit now."""


ANY = Go | NeedMaps | MapsDone | Pid | Step | RootfsReady | HooksDone | Ready | Fail | Abort

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(ANY)


def encode(msg: Msg) -> bytes:
    """Encode one message as a packet."""
    return _enc.encode(msg)


def decode(packet: bytes) -> Msg:
    """Decode one packet (raises msgspec.DecodeError on garbage)."""
    return _dec.decode(packet)
