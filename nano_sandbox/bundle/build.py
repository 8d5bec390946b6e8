"""Building an example bundle's root filesystem from a static busybox.

``nk-runtime bundle build [NAME|DIR]...`` fills ``bundles/<name>/rootfs/`` with a static
``/bin/busybox``, one symlink per applet (``bin/sh -> busybox``, ``usr/bin/awk ->
../../bin/busybox``, as ``busybox --list-full`` places them), the usual top-level directories and
a minimal ``/etc/passwd`` and ``/etc/group``. The built rootfs is ignored by git.

The busybox must be statically linked: a dynamic one would need the host's libc inside the
container. Debian's ``busybox-static`` package provides it (``apt-get install busybox-static``).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

from nano_sandbox import errors

CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
INSTALL_HINT = "install Debian's static busybox first: apt-get install -y busybox-static"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:an unprivileged user:/home/user:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
user:x:1000:
nogroup:x:65534:
"""


def is_static_elf(path: str) -> bool:
    """True when ``path`` is an ELF executable without a PT_INTERP program header (elf(5)):
    statically linked, so it runs inside any root filesystem."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64 = head[4] == 2
        endian = "<" if head[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        else:
            phoff, = struct.unpack_from(endian + "I", head, 28)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 42)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (ptype,) = struct.unpack(endian + "I", f.read(4))
            if ptype == 3:  # PT_INTERP: needs a dynamic loader
                return False
    return True


def find_busybox(explicit: str | None = None) -> str:
    """Return the path of a static busybox.

    Raises:
        errors.NkError: none found, or only a dynamically linked one (message says what to install).
    """
    paths = [explicit] if explicit else list(CANDIDATES)
    dynamic = None
    for p in paths:
        if p and os.path.isfile(p):
            if is_static_elf(p):
                return p
            dynamic = p
    if dynamic:
        raise errors.NkError(f"{dynamic} is dynamically linked and would not run inside the container; {INSTALL_HINT}")
    raise errors.NkError(f"busybox not found (looked in {', '.join(paths)}); {INSTALL_HINT}")


def build_rootfs(rootfs: str, busybox: str | None = None, force: bool = False) -> int:
    """Fill ``rootfs`` from a static busybox; returns the number of applet links made.

    An existing rootfs is left as is unless ``force`` (then it is rebuilt from scratch).
    """
    bb = find_busybox(busybox)
    if os.path.exists(os.path.join(rootfs, "bin", "busybox")) and not force:
        return 0
    if force and os.path.isdir(rootfs):
        shutil.rmtree(rootfs)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "home/user", "var", "run"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "tmp"), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    os.chown(os.path.join(rootfs, "home/user"), 1000, 1000) if os.geteuid() == 0 else None
    target = os.path.join(rootfs, "bin", "busybox")
    shutil.copy2(bb, target)
    os.chmod(target, 0o755)
    listing = subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    n = 0
    for rel in listing:
        rel = rel.strip("/")
        if not rel or rel in ("bin/busybox", "linuxrc"):
            continue
        link = os.path.join(rootfs, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        up = os.path.relpath(os.path.join(rootfs, "bin", "busybox"), os.path.dirname(link))
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(up, link)
        n += 1
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write(GROUP)
    with open(os.path.join(rootfs, "etc", "hostname"), "w") as f:
        f.write("nano-sandbox\n")
    return n


def bundles_dir() -> str:
    """The repository's ``bundles/`` folder (beside the package)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bundles")


def resolve_bundle(name_or_dir: str) -> str:
    """A bundle given by name (``busybox`` → ``<repo>/bundles/busybox``) or by path."""
    if os.sep in name_or_dir or name_or_dir in (".", ".."):
        return os.path.abspath(name_or_dir)
    return os.path.join(bundles_dir(), name_or_dir)
