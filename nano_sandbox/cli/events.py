"""``nk-runtime events [--stats] [--interval D] CONTAINER_ID``: a container's resource statistics
and OOM events as JSON lines, like runc's ``events``.

Each line is ``{"type": "stats", "id": ID, "data": STATS}`` (STATS in runc's ``types.Stats``
shape, see :mod:`nano_sandbox.cgroups.stats`) or ``{"type": "oom", "id": ID}``. With ``--stats``
one stats line is printed and the command exits; otherwise a stats line every ``--interval``
(Go duration: ``5s``, ``100ms``, ``1m30s``; default 5s) and an oom line whenever the OOM killer acts
in the container's memory cgroup, until the container stops (exit status 0).
"""

from __future__ import annotations

from nano_sandbox import errors
from nano_sandbox.cli import _args

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str) -> float:
    """Parse a Go duration (``time.ParseDuration``: ``"5s"``, ``"100ms"``, ``"1h2m3.5s"``,
    ``"0"``) into seconds.

    Raises:
        errors.InvalidArgument: ``time: invalid duration "x"`` (Go's wording).
    """
    import re

    s = text.strip()
    bad = errors.InvalidArgument(f'time: invalid duration "{text}"')
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", s)
    if not s or not parts or "".join(n + u for n, u in parts) != s:
        raise bad
    ns = sum(float(n) * _UNIT_NS[u] for n, u in parts)
    return sign * ns / 1e9


def _emit(kind: str, cid: str, data=None) -> None:
    import json

    ev = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = data
    _args.out(json.dumps(ev, separators=(",", ":")) + "\n")


def run(g, argv: list[str]) -> int:
    p = _args.parser("events", "Print a container's resource statistics and OOM events as JSON lines.")
    p.add_argument("--stats", action="store_true", help="print the statistics once and exit")
    p.add_argument("--interval", default="5s", help="time between statistics (Go duration, default 5s)")
    _args.add_id(p)
    a = _args.parse(p, argv)
    interval = parse_duration(a.interval)
    if interval <= 0:
        raise errors.InvalidArgument("duration interval must be greater than 0")
    from nano_sandbox.cgroups.manager import Manager
    from nano_sandbox.state import store

    store.validate_id(a.id)
    st = store.load(g.root, a.id)
    if store.derive_status(g.root, st) == "stopped":
        raise errors.NkError(f'cannot read events of container "{a.id}": container is stopped (events needs created or running or paused)')
    mgr = Manager(st.cgroup_paths, st.cgroup_created)
    if a.stats:
        _emit("stats", a.id, mgr.stats())
        return 0
    return _follow(a.id, st, mgr, interval)


def _follow(cid: str, st, mgr, interval: float) -> int:
    import os
    import time

    from nano_sandbox.cgroups.stats import OomWatcher
    from nano_sandbox.state import store

    try:
        watcher = OomWatcher(mgr)
    except OSError as e:
        from nano_sandbox import log

        log.get().warning(f"events: OOM events unavailable: {e.strerror or e}")
        watcher = None
    try:
        pidfd = os.pidfd_open(st.pid) if st.pid else None
    except OSError:
        pidfd = None
    try:
        next_stats = time.monotonic() + interval
        while True:
            timeout = max(0.0, min(next_stats - time.monotonic(), 1.0))
            exited = False
            if watcher is not None:
                ooms, exited = watcher.wait(timeout, pidfd)
                for _ in range(ooms):
                    _emit("oom", cid)
            else:
                import select

                if pidfd is not None:
                    exited = bool(select.select([pidfd], [], [], timeout)[0])
                else:
                    time.sleep(timeout)
            if exited or not store.init_alive(st):
                if watcher is not None:
                    for _ in range(watcher.wait(0)[0]):  # an OOM kill is what often ends it
                        _emit("oom", cid)
                return 0
            if time.monotonic() >= next_stats:
                _emit("stats", cid, mgr.stats())
                next_stats += interval
                if next_stats < time.monotonic():
                    next_stats = time.monotonic() + interval
    except BrokenPipeError:
        return 0
    finally:
        if watcher is not None:
            watcher.close()
        if pidfd is not None:
            os.close(pidfd)
