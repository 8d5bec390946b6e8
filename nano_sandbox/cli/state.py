"""``nk-runtime state CONTAINER_ID``: print the OCI state JSON (runtime-spec runtime.md "State")."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    a = _args.Simple("state", "Print the OCI state of a container as JSON.", [], [_args.ID]).parse(argv)
    import msgspec

    from nano_sandbox.lifecycle import ops

    doc = ops.state(g.root, a.id)
    _args.out(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")
    return 0
