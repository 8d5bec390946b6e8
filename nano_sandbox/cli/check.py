"""``nk-runtime check``: validate a bundle without creating anything.

Usage: ``nk-runtime check [--bundle|-b DIR]``

Decodes ``DIR/config.json`` (default: the current directory); a decode error is the single
problem. Otherwise runs :func:`nano_sandbox.spec.validate.check` against this host
(:meth:`~nano_sandbox.spec.validate.Host.probe`) and :func:`~nano_sandbox.spec.validate.warnings`.

Output (stdout), one line each: every problem (``config.json: <path>: <message>``), then every
warning prefixed ``warning: ``, then a summary line. Exit status 0 when there is no problem
(warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import os
import sys

from nano_sandbox import errors


def _parser():
    import argparse

    p = argparse.ArgumentParser(prog="nk-runtime check", description="Validate an OCI bundle against the runtime-spec and this host.")
    p.add_argument("--bundle", "-b", default="", metavar="DIR", help="bundle directory (default: current directory)")
    return p


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run(g, argv: list[str]) -> int:
    """Run ``check`` with ``argv``; ``g`` is the GlobalOptions. Returns 0 (valid) or 1 (problems)."""
    from nano_sandbox.spec import decode_config
    from nano_sandbox.spec.validate import Host, check, warnings

    args = _parser().parse_args(argv)
    bundle = os.path.abspath(args.bundle or ".")
    path = os.path.join(bundle, "config.json")
    problems: list[errors.ConfigError]
    warns: list[str] = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        what = "no config.json in bundle" if isinstance(e, FileNotFoundError) else "cannot read config.json in bundle"
        problems = [errors.ConfigError("", f"{what} {bundle}: {e.strerror}")]
    else:
        try:
            spec = decode_config(data, normalize=False)
        except errors.ConfigError as e:
            problems = [e]
        else:
            host = Host.probe()
            problems = check(spec, bundle, host)
            warns = warnings(spec, host)
    out = sys.stdout
    for p in problems:
        out.write(f"{p}\n")
    for w in warns:
        out.write(f"warning: {w}\n")
    verdict = "invalid" if problems else "valid"
    out.write(f"{path}: {verdict} ({_plural(len(problems), 'problem')}, {_plural(len(warns), 'warning')})\n")
    out.flush()
    return 1 if problems else 0
