"""The OCI configuration model: decode ``config.json`` (and ``process.json``, ``resources.json``).

This is the API the rest of the runtime calls::

    spec = load_bundle("/path/to/bundle")          # -> config.Spec
    proc = decode_process(data)                    # exec --process
    res = decode_resources(data)                   # update --resources
    data = encode(spec)                            # compact JSON bytes

Every failure is a :class:`nano_sandbox.errors.ConfigError` whose ``path`` names the JSON field at
fault. Path format (used here and by :mod:`nano_sandbox.spec.validate`):

* object fields are dotted with their JSON names: ``linux.resources.memory.limit``;
* array items are ``[i]``: ``process.rlimits[0].soft``;
* map entries are ``["key"]`` with the key JSON-quoted, so dots in keys stay unambiguous:
  ``linux.sysctl["net.ipv4.ip_forward"]``, ``linux.resources.rdma["mlx5_1"].hcaHandles``,
  ``annotations["org.example.key"]``;
* ``""`` means the document as a whole (malformed JSON, top level not an object).

Messages are lower-case and say what was expected: ``expected int, got str``,
``expected int <= 18446744073709551615``, ``required field is missing``,
``invalid value "foo" (expected one of "mount", "pid", ...)``,
``invalid JSON: object keys must be strings at line 1, column 2 (byte 1)``.

Import cost: this module imports only msgspec (which itself imports ``typing`` and ``re``) and
the model; the validator is imported on first decode and the ``typing`` helpers that name
map keys and enum choices only when a document is rejected.
"""

from __future__ import annotations

import msgspec

from nano_sandbox.errors import ConfigError
from nano_sandbox.spec.config import (
    UINT64_FIELDS,
    UINT64_MAX,
    LinuxResources,
    Process,
    Spec,
)

__all__ = [
    "ConfigError",
    "LinuxResources",
    "Process",
    "Spec",
    "decode_config",
    "decode_process",
    "decode_resources",
    "encode",
    "load_bundle",
]

_DECODERS: dict[type, msgspec.json.Decoder] = {}
_ENCODER = msgspec.json.Encoder()


def _decoder(typ: type) -> msgspec.json.Decoder:
    dec = _DECODERS.get(typ)
    if dec is None:
        dec = _DECODERS[typ] = msgspec.json.Decoder(typ)
    return dec


def decode_config(data: bytes | str, source: str = "config.json", *, normalize: bool = True) -> Spec:
    """Decode a ``config.json`` document into a :class:`~nano_sandbox.spec.config.Spec`.

    Implements the type rules of the runtime-spec JSON schema (config-schema.json,
    config-linux.json) and then the cheap structural rules of
    :func:`nano_sandbox.spec.validate.structural_problems` (root, process args/cwd, rlimits,
    namespaces, hostname/domainname vs uts namespace). Host-dependent and semantic checks are left
    to :func:`nano_sandbox.spec.validate.check`.

    Args:
        data: the JSON bytes (or str).
        source: document name used in error messages.
        normalize: when True (the default), an empty namespace ``path`` (``""``, Go's zero
            value) becomes None (a new namespace).

    Returns:
        The decoded Spec.

    Raises:
        ConfigError: malformed JSON, a type/range/enum error, a missing required field, or the
            first structural problem.
    """
    spec = _decode(data, Spec, source)
    from nano_sandbox.spec.validate import structural_problems

    problems = structural_problems(spec, source)
    if problems:
        raise problems[0]
    if normalize:
        if spec.linux is not None:
            for ns in spec.linux.namespaces:
                if ns.path == "":
                    ns.path = None
    return spec


def decode_process(data: bytes | str, source: str = "process.json") -> Process:
    """Decode the process document of ``exec --process`` (config.md "Process").

    Paths in errors are relative to the document (``args``, ``user.uid``, ``rlimits[0].type``).
    The structural process rules apply (at least one ``args`` entry, absolute ``cwd``, rlimit names,
    duplicates and soft <= hard).

    Raises:
        ConfigError: as :func:`decode_config`.
    """
    proc = _decode(data, Process, source)
    from nano_sandbox.spec.validate import process_problems

    problems = process_problems(proc, "", source)
    if problems:
        raise problems[0]
    return proc


def decode_resources(data: bytes | str, source: str = "resources.json") -> LinuxResources:
    """Decode the resources document of ``update --resources`` (config-linux.md "Control groups").

    Paths in errors are relative to the document (``memory.limit``). Because ``update`` has no
    separate check step, the host-independent value rules of
    :func:`nano_sandbox.spec.validate.resource_problems` apply here too (no negative values other
    than -1 where -1 means unlimited, swap >= limit, swappiness <= 100, ...).

    Raises:
        ConfigError: as :func:`decode_config`.
    """
    res = _decode(data, LinuxResources, source)
    from nano_sandbox.spec.validate import resource_problems

    problems = resource_problems(res, "", source)
    if problems:
        raise problems[0]
    return res


def load_bundle(bundle_dir: str) -> Spec:
    """Read and decode ``<bundle_dir>/config.json`` (runtime-spec bundle.md, config.md).

    Raises:
        ConfigError: ``config.json: no config.json in bundle <dir>: <strerror>`` when the file
            is missing, ``cannot read ...`` for other I/O errors, or any :func:`decode_config`
            error.
    """
    import os

    path = os.path.join(bundle_dir, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise ConfigError("", f"no config.json in bundle {bundle_dir}: {e.strerror}", source="config.json") from None
    except OSError as e:
        raise ConfigError("", f"cannot read config.json in bundle {bundle_dir}: {e.strerror}", source="config.json") from None
    return decode_config(data, "config.json")


def encode(obj: object) -> bytes:
    """Encode a model object (Spec, Process, ...) or plain data as compact JSON bytes.

    Fields left at their default are omitted (a root ``process.user`` encodes as ``{}``), so
    ``decode_config(encode(spec)) == spec``.
    """
    return _ENCODER.encode(obj)


# -- decoding and error translation ------------------------------------------------------------

_DIGITS = bytes(range(256)).translate(bytes.maketrans(b"0123456789", b"0000000000"))


def _decode(data: bytes | str, typ: type, source: str):
    try:
        obj = _decoder(typ).decode(data)
    except msgspec.ValidationError as e:
        raise _from_validation(str(e), data, typ, source) from None
    except msgspec.DecodeError as e:
        raise _from_malformed(str(e), data, source) from None
    except RecursionError:
        raise ConfigError("", "invalid JSON: nested too deeply", source) from None
    # msgspec cannot bound ints above int64, and decodes larger literals as Python ints: a uint64
    # can only overflow when the text holds a run of 20+ digits (2**64-1 has 20).
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if b"0" * 20 in raw.translate(_DIGITS):
        for path, value in _uint64_overflows(obj, ""):
            raise ConfigError(path, f"expected int <= {UINT64_MAX}, got {value}", source)
    return obj


def _uint64_overflows(obj, path: str):
    """Yield ``(path, value)`` for each uint64 field above 2**64-1 in the struct tree ``obj``."""
    names = UINT64_FIELDS.get(type(obj))
    if names:
        enc = dict(zip(obj.__struct_fields__, obj.__struct_encode_fields__))
        for n in names:
            v = getattr(obj, n)
            if v is not None and v > UINT64_MAX:
                yield _join(path, enc[n]), v
    for n, e in zip(obj.__struct_fields__, obj.__struct_encode_fields__):
        v = getattr(obj, n)
        if isinstance(v, msgspec.Struct):
            yield from _uint64_overflows(v, _join(path, e))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, msgspec.Struct):
                    yield from _uint64_overflows(x, f"{_join(path, e)}[{i}]")
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, msgspec.Struct):
                    yield from _uint64_overflows(x, f"{_join(path, e)}[{_quote(k)}]")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _quote(key: str) -> str:
    return msgspec.json.encode(key).decode()


def _position(data: bytes, byte: int) -> str:
    line = data.count(b"\n", 0, byte) + 1
    col = byte - (data.rfind(b"\n", 0, byte) + 1) + 1
    return f"line {line}, column {col} (byte {byte})"


def _from_malformed(msg: str, data: bytes | str, source: str) -> ConfigError:
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not raw.strip():
        return ConfigError("", "invalid JSON: the document is empty", source)
    if msg.startswith("Input data was truncated"):
        return ConfigError("", f"invalid JSON: unexpected end of data at {_position(raw, len(raw))}", source)
    detail = msg.removeprefix("JSON is malformed: ")
    byte = None
    if detail.endswith(")") and "(byte " in detail:
        detail, _, num = detail.rpartition(" (byte ")
        try:
            byte = int(num[:-1])
        except ValueError:
            byte = None
    if byte is None:
        return ConfigError("", f"invalid JSON: {detail}", source)
    return ConfigError("", f"invalid JSON: {detail} at {_position(raw, byte)}", source)


def _parse_path(expr: str) -> list:
    """``$.a.b[0][...].c`` -> ``["a", "b", 0, ..., "c"]`` (``...`` = Ellipsis for a map key)."""
    segs: list = []
    i = 1  # skip "$"
    n = len(expr)
    while i < n:
        c = expr[i]
        if c == ".":
            j = i + 1
            while j < n and expr[j] not in ".[":
                j += 1
            segs.append(expr[i + 1 : j])
            i = j
        elif c == "[":
            j = expr.index("]", i)
            inner = expr[i + 1 : j]
            segs.append(... if inner == "..." else int(inner))
            i = j + 1
        else:
            i += 1
    return segs


def _from_validation(msg: str, data: bytes | str, root: type, source: str) -> ConfigError:
    """Translate a msgspec ValidationError message into a ConfigError with a JSON path."""
    text, sep, where = msg.rpartition(" - at `")
    if not sep:
        text, expr = msg, "$"
    else:
        expr = where.rstrip("`")
    segs = _parse_path(expr)
    bound = text.startswith(("Expected `int` >", "Expected `int` <"))
    need_doc = ... in segs or bound or text.startswith("Invalid enum value") or "matching regex" in text
    doc = None
    if need_doc:
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError:  # pragma: no cover - the typed decode got this far
            doc = None
    names, value, typ = _resolve(segs, doc, root)
    path = _render(names)

    if text.startswith("Object missing required field `"):
        field_name = text[len("Object missing required field `") :].rstrip("`")
        return ConfigError(_join(path, field_name), "required field is missing", source)
    if text.startswith("Invalid enum value"):
        choices = _literal_values(typ)
        shown = _quote_any(value) if value is not _MISSING else text[len("Invalid enum value ") :]
        if choices:
            listed = ", ".join(_quote_any(c) for c in choices)
            return ConfigError(path, f"invalid value {shown} (expected one of {listed})", source)
        return ConfigError(path, f"invalid value {shown}", source)
    if "matching regex '" in text:
        pattern = text[text.index("matching regex '") + len("matching regex '") :].rstrip("'")
        got = f", got {_quote_any(value)}" if value is not _MISSING else ""
        return ConfigError(path, f"expected a string matching {pattern}{got}", source)
    out = text.replace("`", "").replace(" | null", "")
    if out[:1].isupper():
        out = out[0].lower() + out[1:]
    if bound and value is not _MISSING:
        out += f", got {_quote_any(value)}"
    return ConfigError(path, out, source)


_MISSING = object()


def _quote_any(v) -> str:
    return msgspec.json.encode(v).decode()


def _render(names: list) -> str:
    out = ""
    for s in names:
        if isinstance(s, int):
            out += f"[{s}]"
        elif isinstance(s, tuple):  # ("key", k) or ("key", None) when unknown
            out += f"[{_quote(s[1])}]" if s[1] is not None else "[...]"
        else:
            out = _join(out, s)
    return out


def _resolve(segs: list, doc, root: type):
    """Walk ``segs`` through the document and the model types.

    Returns (rendered segments with map keys filled in, the value at the path or _MISSING, the
    model type at the path). A map key is found by converting each value of the map to the
    map's value type: the first one that fails is the one msgspec reported (it decodes in order).
    """
    import typing

    names: list = []
    typ = root
    cur = doc if doc is not None else _MISSING
    for seg in segs:
        base = _strip(typ)
        if seg is ...:
            vt = typing.get_args(base)[1] if typing.get_origin(base) is dict else typing.Any
            key = None
            if isinstance(cur, dict):
                for k, v in cur.items():
                    try:
                        msgspec.convert(v, vt)
                    except msgspec.ValidationError:
                        key = k
                        break
            names.append(("key", key))
            cur = cur[key] if key is not None and isinstance(cur, dict) else _MISSING
            typ = vt
        elif isinstance(seg, int):
            names.append(seg)
            args = typing.get_args(base)
            typ = args[0] if args else typing.Any
            cur = cur[seg] if isinstance(cur, list) and seg < len(cur) else _MISSING
        else:
            names.append(seg)
            typ = _field_type(base, seg)
            cur = cur.get(seg, _MISSING) if isinstance(cur, dict) else _MISSING
    return names, cur, typ


def _strip(tp):
    """Remove ``Annotated`` and ``| None`` around a type."""
    import types
    import typing

    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _field_type(cls, enc_name: str):
    import typing

    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        return typing.Any
    hints = typing.get_type_hints(cls, include_extras=True)
    for name, enc in zip(cls.__struct_fields__, cls.__struct_encode_fields__):
        if enc == enc_name:
            return hints[name]
    return typing.Any


def _literal_values(tp) -> tuple:
    import typing

    base = _strip(tp)
    if typing.get_origin(base) is typing.Literal:
        return typing.get_args(base)
    return ()
