"""``nk-runtime create [--bundle|-b DIR] [--pid-file FILE] [--console-socket PATH] [--no-pivot]
[--no-new-keyring] [--preserve-fds N] CONTAINER_ID`` (runc's flags; runtime-spec runtime.md
"Create")."""

from __future__ import annotations

from nano_sandbox.cli import _args


def add_create_flags(p) -> None:
    """The flags ``create`` and ``run`` share (runc's)."""
    p.add_argument("--bundle", "-b", default=".", help="path to the bundle directory (default: current directory)")
    p.add_argument("--pid-file", help="write the init's pid to this file (decimal, no newline)")
    p.add_argument("--console-socket", help="unix socket that receives the pty master when process.terminal is true")
    p.add_argument("--no-pivot", action="store_true", help="use MS_MOVE and chroot instead of pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help="keep the caller's session keyring")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N", help="pass N fds after stdio (3..3+N-1) to the process")


def options_from(a):
    from nano_sandbox.lifecycle.ops import Options

    _args.check_preserve_fds(a.preserve_fds)
    return Options(bundle=a.bundle, pid_file=a.pid_file, console_socket=a.console_socket, no_pivot=a.no_pivot,
                   no_new_keyring=a.no_new_keyring, preserve_fds=a.preserve_fds)


def run(g, argv: list[str]) -> int:
    p = _args.parser("create", "Create a container from a bundle; its process waits for start.")
    add_create_flags(p)
    _args.add_id(p)
    a = _args.parse(p, argv)
    from nano_sandbox.lifecycle import ops

    ops.create(g, a.id, options_from(a))
    return 0
