"""``nk-runtime bundle build [--force] [--busybox PATH] [NAME|DIR ...]``: build the root
filesystem of example bundles (default: every bundle under ``bundles/``) from a static busybox."""

from __future__ import annotations

import os

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    p = _args.parser("bundle", "Build example bundles' root filesystems from Debian's busybox-static.")
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="fill bundles/<name>/rootfs")
    b.add_argument("bundles", nargs="*", metavar="NAME|DIR")
    b.add_argument("--force", action="store_true", help="rebuild an existing rootfs")
    b.add_argument("--busybox", help="path of a static busybox (default /bin/busybox)")
    a = _args.parse(p, argv)
    from nano_sandbox.bundle import build

    names = a.bundles or sorted(d for d in os.listdir(build.bundles_dir()) if os.path.isfile(os.path.join(build.bundles_dir(), d, "config.json")))
    for name in names:
        bundle = build.resolve_bundle(name)
        rootfs = os.path.join(bundle, "rootfs")
        n = build.build_rootfs(rootfs, a.busybox, a.force)
        _args.out(f"{rootfs}: {'built with ' + str(n) + ' busybox applets' if n else 'already built (use --force to rebuild)'}\n")
    return 0
