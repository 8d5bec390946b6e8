"""The init's side of the sync-socket protocol: a minimal MessagePack codec.

The runtime encodes and decodes the messages of :mod:`nano_sandbox.process.messages` with
msgspec. The container init must stay small (its resident memory is the cost of every created
container, and it is forked before the runtime imports anything heavy), so it does not import
msgspec: it reads and writes the very same bytes with this codec, which knows exactly the shapes
those messages use — a MessagePack array whose first item is the message's tag (msgspec's
``tag=True, array_like=True`` layout) followed by ints, strings, bytes, bools, None and arrays of
strings. A unit test checks that both sides produce identical bytes for every message type.

MessagePack spec: https://github.com/msgpack/msgpack/blob/master/spec.md
"""

from __future__ import annotations

import struct


def _int(n: int) -> bytes:
    if 0 <= n < 0x80:
        return bytes((n,))
    if -32 <= n < 0:
        return struct.pack("b", n)
    if n >= 0:
        if n <= 0xFF:
            return b"\xcc" + struct.pack(">B", n)
        if n <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", n)
        if n <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", n)
        return b"\xcf" + struct.pack(">Q", n)
    if n >= -0x80:
        return b"\xd0" + struct.pack(">b", n)
    if n >= -0x8000:
        return b"\xd1" + struct.pack(">h", n)
    if n >= -0x80000000:
        return b"\xd2" + struct.pack(">i", n)
    return b"\xd3" + struct.pack(">q", n)


def _str(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    n = len(b)
    if n < 32:
        return bytes((0xA0 | n,)) + b
    if n <= 0xFF:
        return b"\xd9" + bytes((n,)) + b
    if n <= 0xFFFF:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def _bin(b: bytes) -> bytes:
    n = len(b)
    if n <= 0xFF:
        return b"\xc4" + bytes((n,)) + b
    if n <= 0xFFFF:
        return b"\xc5" + struct.pack(">H", n) + b
    return b"\xc6" + struct.pack(">I", n) + b


def _array_head(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n <= 0xFFFF:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def pack(value) -> bytes:
    """Encode ``value`` (None, bool, int, str, bytes, or a list/tuple of those)."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, (bytes, bytearray)):
        return _bin(bytes(value))
    if isinstance(value, (list, tuple)):
        return _array_head(len(value)) + b"".join(pack(v) for v in value)
    raise TypeError(f"wire: cannot encode {type(value).__name__}")


def message(tag: str, *fields) -> bytes:
    """Encode a message as msgspec does for ``class <tag>(Struct, tag=True, array_like=True)``:
    ``[tag, field1, field2, ...]``."""
    return pack([tag, *fields])


def unpack(data: bytes):
    """Decode one value (the shapes :func:`pack` writes).

    Raises:
        ValueError: malformed or unsupported data.
    """
    value, pos = _unpack(data, 0)
    if pos != len(data):
        raise ValueError("wire: trailing bytes")
    return value


def _unpack(d: bytes, i: int):
    b = d[i]
    i += 1
    if b < 0x80:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return d[i : i + n].decode("utf-8", "surrogateescape"), i + n
    if 0x90 <= b <= 0x9F:
        return _items(d, i, b & 0x0F)
    if b == 0xC0:
        return None, i
    if b == 0xC2:
        return False, i
    if b == 0xC3:
        return True, i
    fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}.get(b)
    if fmt is not None:
        size = struct.calcsize(fmt)
        return struct.unpack_from(fmt, d, i)[0], i + size
    if b in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        lfmt = {0xD9: ">B", 0xDA: ">H", 0xDB: ">I", 0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}[b]
        n = struct.unpack_from(lfmt, d, i)[0]
        i += struct.calcsize(lfmt)
        raw = d[i : i + n]
        return (raw.decode("utf-8", "surrogateescape") if b in (0xD9, 0xDA, 0xDB) else bytes(raw)), i + n
    if b in (0xDC, 0xDD):
        lfmt = ">H" if b == 0xDC else ">I"
        n = struct.unpack_from(lfmt, d, i)[0]
        return _items(d, i + struct.calcsize(lfmt), n)
    raise ValueError(f"wire: unsupported type byte {b:#x}")


def _items(d: bytes, i: int, n: int):
    out = []
    for _ in range(n):
        v, i = _unpack(d, i)
        out.append(v)
    return out, i
