"""``nk-runtime update [options] CONTAINER_ID``: change the resource limits of a created, running or
paused container (runc's ``update``).

The new limits come either from ``--resources FILE`` (``-`` for stdin): a ``LinuxResources`` JSON
document (runtime-spec config-linux.md "Control groups"), as podman and containerd send it; or from
runc's flags (``--memory 64m``, ``--cpu-quota 50000``, ``--pids-limit 100``, ...). As in runc, when
``--resources`` is given the other flags are ignored (with a warning). Only what is given changes;
the container's stored config is updated to match.

Memory flags take runc's sizes (docker/go-units ``RAMInBytes``): a number with an optional binary
unit ``k``, ``m``, ``g``, ``t``, ``p`` (optionally followed by ``i``/``b``: ``64m``, ``1GiB``,
``512KB``), or ``-1`` for unlimited.
"""

from __future__ import annotations

from nano_sandbox import errors
from nano_sandbox.cli import _args

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

#: flag -> (JSON block, JSON field, kind): kind "size" (RAMInBytes), "uint", "int", "str".
FLAGS: dict[str, tuple[str, str, str]] = {
    "--memory": ("memory", "limit", "size"),
    "--memory-reservation": ("memory", "reservation", "size"),
    "--memory-swap": ("memory", "swap", "size"),
    "--kernel-memory": ("memory", "kernel", "size"),
    "--kernel-memory-tcp": ("memory", "kernelTCP", "size"),
    "--cpu-share": ("cpu", "shares", "uint"),
    "--cpu-period": ("cpu", "period", "uint"),
    "--cpu-quota": ("cpu", "quota", "int"),
    "--cpu-burst": ("cpu", "burst", "uint"),
    "--cpu-rt-period": ("cpu", "realtimePeriod", "uint"),
    "--cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "--cpuset-cpus": ("cpu", "cpus", "str"),
    "--cpuset-mems": ("cpu", "mems", "str"),
    "--cpu-idle": ("cpu", "idle", "int"),
    "--blkio-weight": ("blockIO", "weight", "uint"),
    "--pids-limit": ("pids", "limit", "int"),
}


def ram_in_bytes(text: str) -> int:
    """Parse a size as docker/go-units ``RAMInBytes`` (runc's memory flags): ``"64m"`` →
    67108864, ``"1.5g"`` → 1610612736, ``"512"`` → 512; units are binary (k = 1024).

    Raises:
        ValueError: ``invalid size: '<text>'``.
    """
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?", text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    try:
        size = float(m.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    return int(size * _UNITS[(m.group(2) or "").lower()])


def _value(flag: str, kind: str, text: str):
    if kind == "str":
        return text
    if kind == "size":
        if text == "-1":
            return -1
        try:
            return ram_in_bytes(text)
        except ValueError as e:
            raise errors.InvalidArgument(f"invalid value for {flag}: {e}") from None
    try:
        v = int(text, 10)
    except ValueError:
        v = None
    if v is None or (kind == "uint" and v < 0):
        raise errors.InvalidArgument(f"invalid value for {flag}: {text!r} is not an {'unsigned ' if kind == 'uint' else ''}integer")
    return v


def resources_from_flags(given: dict[str, str]):
    """Build the ``LinuxResources`` of runc's update flags (``{"--memory": "64m", ...}``).

    Raises:
        errors.InvalidArgument: a bad value, naming the flag (``invalid value for --memory: invalid
            size: 'x'``), or a value the spec's rules refuse (``--memory-swap: must be >=
            memory.limit ...``).
    """
    import msgspec

    from nano_sandbox import spec as specmod

    doc: dict = {}
    where: dict[str, str] = {}
    for flag, text in given.items():
        block, field, kind = FLAGS[flag]
        value = _value(flag, kind, text)
        if block == "pids":
            doc["pids"] = {"limit": value}
        else:
            doc.setdefault(block, {})[field] = value
        where[f"{block}.{field}"] = flag
    try:
        return specmod.decode_resources(msgspec.json.encode(doc), source="update")
    except errors.ConfigError as e:
        flag = where.get(e.path)
        raise errors.InvalidArgument(f"{flag}: {e.message}" if flag else str(e)) from None


def read_resources(path: str):
    """Read and decode the ``--resources`` document (``-``: stdin).

    Raises:
        errors.InvalidArgument: the file cannot be read; errors.ConfigError: bad JSON or values
            (``resources.json: memory.limit: expected int, got str``).
    """
    import sys

    from nano_sandbox import spec as specmod

    if path == "-":
        data = sys.stdin.buffer.read()
        source = "resources (stdin)"
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise errors.InvalidArgument(f"--resources {path}: {e.strerror}") from None
        source = path
    return specmod.decode_resources(data, source=source)


def _check_rdt(l3: str | None, mb: str | None) -> None:
    import os

    if not l3 and not mb:
        return
    if not os.path.exists("/sys/fs/resctrl/schemata"):
        if l3:
            raise errors.HostError("Intel RDT/CAT: l3 cache schema is not enabled (resctrl is not mounted at /sys/fs/resctrl)")
        raise errors.HostError("Intel RDT/MBA: memory bandwidth schema is not enabled (resctrl is not mounted at /sys/fs/resctrl)")
    raise errors.HostError("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by nk-runtime")


def run(g, argv: list[str]) -> int:
    p = _args.parser("update", "Update the resource limits of a container.")
    p.add_argument("--resources", "-r", metavar="FILE", help="LinuxResources JSON file, '-' for stdin (other flags are then ignored)")
    for flag, (_block, _field, kind) in FLAGS.items():
        p.add_argument(flag, dest=flag[2:].replace("-", "_"), metavar="SIZE" if kind == "size" else "VALUE")
    p.add_argument("--l3-cache-schema", help="Intel RDT/CAT L3 cache schema")
    p.add_argument("--mem-bw-schema", help="Intel RDT/MBA memory bandwidth schema")
    _args.add_id(p)
    a = _args.parse(p, argv)
    given = {flag: getattr(a, flag[2:].replace("-", "_")) for flag in FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    _check_rdt(a.l3_cache_schema, a.mem_bw_schema)
    if a.resources:
        if given:
            g.log.warning(f"update: {', '.join(given)} ignored: --resources was given (as runc does)")
        resources = read_resources(a.resources)
    else:
        resources = resources_from_flags(given)
    from nano_sandbox.lifecycle import ops

    ops.update(g, a.id, resources)
    return 0
