"""``nk-runtime pause CONTAINER_ID`` and ``nk-runtime resume CONTAINER_ID``: freeze or thaw
every process of a container through the freezer cgroup (runc's verbs; the ``paused`` state)."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    verb = g.verb
    a = _args.Simple(verb, "Freeze every process of a running container." if verb == "pause" else "Thaw a paused container.",
                     [], [_args.ID]).parse(argv)
    from nano_sandbox.lifecycle import ops

    (ops.pause if verb == "pause" else ops.resume)(g, a.id)
    return 0
