"""``nk-runtime start CONTAINER_ID``: run the user process of a created container
(runtime-spec runtime.md "Start")."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    a = _args.Simple("start", "Start a created container: its init executes the user process.", [], [_args.ID]).parse(argv)
    from nano_sandbox.lifecycle import ops

    ops.start(g, a.id)
    return 0
