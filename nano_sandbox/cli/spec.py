"""``nk-runtime spec``: write a default ``config.json`` (as ``runc spec``).

Usage: ``nk-runtime spec [--bundle|-b DIR] [--rootless]``

Writes ``DIR/config.json`` (default: the current directory) from
:func:`nano_sandbox.spec.defaults.default_spec`, pretty-printed with 4-space indentation. An
existing file is never overwritten: the verb fails with runc's message
``File config.json exists. Remove it first``.
"""

from __future__ import annotations

import os

from nano_sandbox import errors


class SpecFileExists(errors.NkError):
    """``nk-runtime spec`` would overwrite an existing ``config.json`` (exit status 1)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"File {path} exists. Remove it first")


def _parser():
    import argparse

    p = argparse.ArgumentParser(
        prog="nk-runtime spec",
        description="Write a default config.json (OCI runtime-spec) into the bundle directory.",
    )
    p.add_argument("--bundle", "-b", default="", metavar="DIR", help="bundle directory to write config.json into (default: current directory)")
    p.add_argument("--rootless", action="store_true", help="write a config for a rootless container (user namespace, no cgroups)")
    return p


def run(g, argv: list[str]) -> int:
    """Run ``spec`` with ``argv`` (the verb's arguments); ``g`` is the GlobalOptions.

    Returns 0 after writing the file.

    Raises:
        SpecFileExists: ``config.json`` already exists (the file is left unchanged).
        errors.InvalidArgument: the bundle directory does not exist.
        errors.HostError: the file cannot be written.
    """
    import msgspec

    from nano_sandbox.spec.defaults import default_spec

    args = _parser().parse_args(argv)
    bundle = args.bundle or "."
    if not os.path.isdir(bundle):
        raise errors.InvalidArgument(f"--bundle {bundle}: no such directory")
    path = os.path.join(bundle, "config.json")
    data = msgspec.json.format(msgspec.json.encode(default_spec(rootless=args.rootless)), indent=4) + b"\n"
    try:
        # O_EXCL: never replace a file, even one created after a check.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise SpecFileExists("config.json" if not args.bundle else path) from None
    except OSError as e:
        raise errors.HostError(f"spec: create {path}: {e.strerror}") from None
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        os.close(fd)
        os.unlink(path)
        raise errors.HostError(f"spec: write {path}: {e.strerror}") from None
    os.close(fd)
    g.log.debug(f"wrote {path}")
    return 0
