"""Resolving a container path inside the root filesystem without ever leaving it.

A rootfs is untrusted: ``/etc`` may be a symlink to ``/../../host``. :func:`secure_join` walks
the path one component at a time, reading each symlink and resolving it *relative to the rootfs*
(an absolute target restarts at the rootfs, ``..`` stops at it), like Go's
``securejoin.SecureJoin`` that runc uses. The result is a host path that lies inside the rootfs;
components that do not exist yet are appended literally, so the caller can create them.
"""

from __future__ import annotations

import os

_MAX_SYMLINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """Return ``root`` joined with ``unsafe`` (a path as seen inside the container), every
    symlink resolved inside ``root``.

    Raises:
        OSError(ELOOP): more than 255 symlinks were followed.
    """
    root = os.path.abspath(root)
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        import stat

        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            import errno

            raise OSError(errno.ELOOP, "too many levels of symbolic links", unsafe)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved) if resolved else root


def is_symlink_in_root(root: str, unsafe: str) -> bool:
    """True when the last component of ``unsafe`` inside ``root`` is a symlink (not followed)."""
    parent = secure_join(root, os.path.dirname(unsafe.rstrip("/")) or "/")
    return os.path.islink(os.path.join(parent, os.path.basename(unsafe.rstrip("/"))))
