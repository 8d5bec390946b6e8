"""``nk-runtime delete [--force|-f] CONTAINER_ID``: remove a stopped container (runtime-spec
runtime.md "Delete"); ``--force`` kills a live one first and succeeds for an unknown id."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    a = _args.Simple(
        "delete", "Delete a stopped container (or any container with --force).",
        [("--force", "-f", "SIGKILL a running container first; an unknown id is not an error")], [_args.ID],
    ).parse(argv)
    from nano_sandbox.lifecycle import ops

    ops.delete(g, a.id, a.force)
    return 0
