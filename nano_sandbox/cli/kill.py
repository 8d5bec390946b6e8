"""``nk-runtime kill [--all|-a] CONTAINER_ID [SIGNAL]``: send SIGNAL (number, ``KILL`` or
``SIGKILL``; default SIGTERM) to the container's init, or with ``--all`` to every process in its
cgroup (runtime-spec runtime.md "Kill")."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    a = _args.Simple(
        "kill", "Send a signal to a container's init process.",
        [("--all", "-a", "signal every process in the container's cgroup")],
        [_args.ID, ("signal", "SIGNAL", "signal name or number (default SIGTERM)", "SIGTERM")],
    ).parse(argv)
    sig = _args.parse_signal(a.signal)
    from nano_sandbox.lifecycle import ops

    ops.kill(g, a.id, sig, a.all)
    return 0
