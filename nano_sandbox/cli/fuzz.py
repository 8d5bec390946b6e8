"""``nk-runtime fuzz [options]``: the lifecycle and config fuzzer of :mod:`nano_sandbox.fuzz`
(the same code as ``python -m nano_sandbox.fuzz``; needs the test extra: hypothesis)."""

from __future__ import annotations


def run(g, argv: list[str]) -> int:
    from nano_sandbox.fuzz.__main__ import main

    return int(main(argv) or 0)
