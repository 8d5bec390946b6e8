"""``nk-runtime``: the command-line entry point, runc-compatible.

Usage: ``nk-runtime [global options] VERB [verb options] [ARGS]``.

The global options are runc's (``--root``, ``--log``, ``--log-format``, ``--debug``,
``--systemd-cgroup``, ``--rootless``, ``--criu``) plus ``-E/--explain``. They are parsed here by
hand, not with argparse, because they come before the verb and every call pays for this code;
each verb lives in its own module under ``nano_sandbox.cli`` and is imported only when called, so a
verb pays only for the modules it uses (measure with ``python -X importtime -m nano_sandbox``).

Exit codes follow runc: 0 on success, 1 on a runtime error, 2 on a usage error; ``run`` and
``exec`` return the container process's status (128+N when it was killed by signal N) and ``exec``
uses 255 for its own failures.
"""

from __future__ import annotations

import os
import sys

from nano_sandbox import errors, log

#: verb -> module under nano_sandbox.cli that implements it (``run(g, argv) -> int``).
VERBS: dict[str, str] = {
    "create": "create",
    "start": "start",
    "run": "run",
    "state": "state",
    "kill": "kill",
    "delete": "delete",
    "list": "list_",
    "ps": "ps",
    "exec": "exec_",
    "pause": "pause",
    "resume": "pause",
    "update": "update",
    "events": "events",
    "spec": "spec",
    "check": "check",
    "features": "features",
    "diagram": "diagram",
    "trace": "trace",
    "bundle": "bundle",
    "fuzz": "fuzz",
}

DEFAULT_ROOT = "/run/nano-sandbox"

USAGE = """\
usage: nk-runtime [global options] COMMAND [command options] [arguments]

nk-runtime is an OCI container runtime written in Python, built to be read.

Lifecycle commands:
  create    create a container from a bundle (it waits for start)
  start     run the user-specified process of a created container
  run       create and start a container (waits for it unless --detach)
  state     print the OCI state of a container
  kill      send a signal to the container's init process (or all of its processes)
  delete    delete a stopped container (or any container with --force)
  list      list containers
  exec      run a new process inside a container
  ps        list the processes of a container
  pause     freeze every process of a container
  resume    thaw a paused container
  update    change a container's resource limits
  events    print a container's events and resource statistics

Bundles and documents:
  spec      write a default config.json
  check     validate a bundle without creating anything
  features  print the OCI features document of this runtime
  bundle    build an example bundle's root filesystem

Learning:
  diagram   print the lifecycle state machine as a diagram
  trace     print the journal of a container's transitions and kernel actions

Global options:
  --root DIR          state directory root (default /run/nano-sandbox)
  --log FILE          write log lines to FILE
  --log-format FMT    text or json (default text)
  --debug             log debug lines too
  -E, --explain       narrate each lifecycle step and the kernel calls behind it (stderr)
  --systemd-cgroup    use systemd to manage cgroups (refused: not supported)
  --rootless VALUE    accepted for runc compatibility (true, false, auto)
  --version, -v       print the version
  --help, -h          print this help
"""


class GlobalOptions:
    """The parsed global options, handed to every verb.

    Attributes:
        root: state root directory (``--root``), absolute.
        log: the process-wide :class:`nano_sandbox.log.Logger`.
        log_format: ``"text"`` or ``"json"``.
        debug: ``--debug`` given.
        explain: ``-E/--explain`` given.
        systemd_cgroup: ``--systemd-cgroup`` given.
    """

    def __init__(self) -> None:
        self.root = DEFAULT_ROOT
        self.log_path: str | None = None
        self.log_format = "text"
        self.debug = False
        self.explain = False
        self.systemd_cgroup = False
        self.rootless = "auto"
        self.log: log.Logger = log.LOG
        self.verb = ""


def version_text() -> str:
    """Return the ``--version`` text: runtime version, spec version, Python version (like runc)."""
    from nano_sandbox import OCI_VERSION, __version__

    py = sys.version.split()[0]
    return f"nk-runtime version {__version__}\nspec: {OCI_VERSION}\npython: {py}\n"


_VALUE_FLAGS = {"--root", "--log", "--log-format", "--criu", "--rootless", "--log-level"}
_BOOL_FLAGS = {"--debug", "--systemd-cgroup", "--explain", "-E"}


def parse_globals(argv: list[str]) -> tuple[GlobalOptions, str | None, list[str]]:
    """Split ``argv`` (without the program name) into global options, the verb and its arguments.

    Accepts ``--flag value``, ``--flag=value`` and Go's single-dash spelling (``-root DIR``).

    Raises:
        errors.InvalidArgument: an unknown global flag, a missing value or a bad ``--log-format``.
    """
    g = GlobalOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            return g, arg, argv[i + 1 :]
        if arg in ("--help", "-h", "-help"):
            return g, "help", []
        if arg in ("--version", "-v", "-version"):
            return g, "version", []
        name, eq, value = arg.partition("=")
        if name.startswith("-") and not name.startswith("--") and name not in ("-E",):
            name = "-" + name  # Go flag package: -root == --root
        if name in _BOOL_FLAGS:
            if eq and value.lower() in ("false", "0"):
                i += 1
                continue
            if name == "--debug":
                g.debug = True
            elif name == "--systemd-cgroup":
                g.systemd_cgroup = True
            else:
                g.explain = True
            i += 1
            continue
        if name in _VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise errors.InvalidArgument(f"flag needs an argument: {name}")
                value = argv[i + 1]
                i += 1
            if name == "--root":
                if not value:
                    raise errors.InvalidArgument("--root: must not be empty")
                g.root = os.path.abspath(value)
            elif name == "--log":
                g.log_path = value
            elif name == "--log-format":
                if value not in ("text", "json"):
                    raise errors.InvalidArgument(f"--log-format: unknown format {value!r} (expected text or json)")
                g.log_format = value
            elif name == "--rootless":
                g.rootless = value
            i += 1
            continue
        raise errors.InvalidArgument(f"flag provided but not defined: {arg}")
    return g, None, []


def main(argv: list[str] | None = None) -> int:
    """Run ``nk-runtime`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    The console script calls this through :func:`_entry`, which passes the status to ``sys.exit``.
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        g, verb, rest = parse_globals(argv)
    except errors.NkError as e:
        sys.stderr.write(f"nk-runtime: {e}\n")
        return 2
    g.log = log.Logger(g.log_path, g.log_format, g.debug)
    log.set_logger(g.log)
    try:
        g.log.open()
    except OSError as e:
        sys.stderr.write(f"nk-runtime: --log {g.log_path}: {e.strerror}\n")
        return 1
    if verb in (None, "help"):
        sys.stdout.write(USAGE)
        return 0 if verb == "help" else 2
    if verb == "version":
        sys.stdout.write(version_text())
        return 0
    modname = VERBS.get(verb)
    if modname is None:
        g.log.error(f"unknown command {verb!r} (see nk-runtime --help)")
        return 2
    g.verb = verb
    try:
        if g.systemd_cgroup:
            from nano_sandbox.cgroups.layout import systemd_available

            if not systemd_available():
                raise errors.HostError(
                    "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
                    "nk-runtime manages cgroups through cgroupfs: drop --systemd-cgroup"
                )
            raise errors.HostError("--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs")
        if verb in ("create", "run"):
            # Fork the container's init now, before anything heavy is imported: its memory is
            # what every waiting container costs (see nano_sandbox.process.zygote).
            from nano_sandbox.process import zygote

            zygote.fork_early()
        import importlib

        mod = importlib.import_module(f"nano_sandbox.cli.{modname}")
        return int(mod.run(g, rest) or 0)
    except errors.NkError as e:
        g.log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line for the user (the traceback with --debug)
        if g.debug:
            import traceback

            traceback.print_exc()
        g.log.error(f"internal error: {type(e).__name__}: {e}")
        return 1
    finally:
        if verb in ("create", "run"):
            from nano_sandbox.process import zygote

            zygote.discard()
        g.log.close()


def _entry() -> None:
    sys.exit(main())
