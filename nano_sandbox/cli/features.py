"""``nk-runtime features``: print the OCI features document (runtime-spec features.md)."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    p = _args.parser("features", "Print what this runtime supports, as the OCI features document (JSON).")
    _args.parse(p, argv)
    import msgspec

    from nano_sandbox.spec.features import features

    _args.out(msgspec.json.format(msgspec.json.encode(features()), indent=4).decode() + "\n")
    return 0
