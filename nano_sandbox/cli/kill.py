"""``nk-runtime kill [--all|-a] CONTAINER_ID [SIGNAL]``: send SIGNAL (number, ``KILL`` or
``SIGKILL``; default SIGTERM) to the container's init, or with ``--all`` to every process in its
cgroup (runtime-spec runtime.md "Kill")."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    p = _args.parser("kill", "Send a signal to a container's init process.")
    p.add_argument("--all", "-a", action="store_true", help="signal every process in the container's cgroup")
    _args.add_id(p)
    p.add_argument("signal", nargs="?", default="SIGTERM", help="signal name or number (default SIGTERM)")
    a = _args.parse(p, argv)
    sig = _args.parse_signal(a.signal)
    from nano_sandbox.lifecycle import ops

    ops.kill(g, a.id, sig, a.all)
    return 0
