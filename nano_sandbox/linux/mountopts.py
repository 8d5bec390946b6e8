"""OCI mount options → mount(2) flags, propagation and data (runtime-spec config.md "Mounts";
mount(8) option names, as runc and crun interpret them).

:func:`parse` splits an option list into what mount(2) needs. Pure: no system calls.
"""

from __future__ import annotations

from nano_sandbox.linux import syscalls as s

#: option -> (clear?, flag). ``clear`` options remove the flag (``rw`` clears MS_RDONLY).
FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, s.MS_SYNCHRONOUS),
    "atime": (True, s.MS_NOATIME),
    "bind": (False, s.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, s.MS_NODEV),
    "diratime": (True, s.MS_NODIRATIME),
    "dirsync": (False, s.MS_DIRSYNC),
    "exec": (True, s.MS_NOEXEC),
    "iversion": (False, s.MS_I_VERSION),
    "lazytime": (False, s.MS_LAZYTIME),
    "loud": (True, s.MS_SILENT),
    "mand": (False, s.MS_MANDLOCK),
    "noatime": (False, s.MS_NOATIME),
    "nodev": (False, s.MS_NODEV),
    "nodiratime": (False, s.MS_NODIRATIME),
    "noexec": (False, s.MS_NOEXEC),
    "noiversion": (True, s.MS_I_VERSION),
    "nolazytime": (True, s.MS_LAZYTIME),
    "nomand": (True, s.MS_MANDLOCK),
    "norelatime": (True, s.MS_RELATIME),
    "nostrictatime": (True, s.MS_STRICTATIME),
    "nosuid": (False, s.MS_NOSUID),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW),
    "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME),
    "remount": (False, s.MS_REMOUNT),
    "ro": (False, s.MS_RDONLY),
    "rw": (True, s.MS_RDONLY),
    "silent": (False, s.MS_SILENT),
    "strictatime": (False, s.MS_STRICTATIME),
    "suid": (True, s.MS_NOSUID),
    "symfollow": (True, s.MS_NOSYMFOLLOW),
    "sync": (False, s.MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": s.MS_PRIVATE,
    "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED,
    "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE,
    "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE,
    "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

#: Options that are not for mount(2) at all but tell the runtime to do something
#: (``tmpcopyup``: podman's "copy the image's directory content into this new tmpfs").
EXTENSIONS = {"tmpcopyup"}

#: Options accepted and ignored with a debug log (SELinux relabel requests from engines).
IGNORED = {"z", "Z", "U", "copy", "nocopy", "notmpcopyup"}


class MountOptions:
    """The parsed form of one OCI mount's ``options``.

    Attributes:
        flags: MS_* flags for mount(2) (``MS_BIND``, ``MS_RDONLY``, ...).
        propagation: MS_* propagation flags to apply after mounting (each its own mount(2) call).
        data: the comma-joined options for the filesystem (``mode=755,size=65536k``).
        extensions: runtime actions requested (``tmpcopyup``).
        ignored: options accepted but ignored.
    """

    __slots__ = ("flags", "propagation", "data", "extensions", "ignored")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data: list[str] = []
        self.extensions: set[str] = set()
        self.ignored: list[str] = []

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & s.MS_BIND)

    @property
    def data_str(self) -> str | None:
        return ",".join(self.data) if self.data else None


def parse(options: list[str] | None) -> MountOptions:
    """Parse OCI mount options. Unknown words become filesystem data (``mode=755``, ``newinstance``)."""
    mo = MountOptions()
    for opt in options or []:
        if opt in FLAGS:
            clear, flag = FLAGS[opt]
            if clear:
                mo.flags &= ~flag
            else:
                mo.flags |= flag
        elif opt in PROPAGATION:
            mo.propagation.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            mo.extensions.add(opt)
        elif opt in IGNORED:
            mo.ignored.append(opt)
        else:
            mo.data.append(opt)
    return mo


def supported() -> list[str]:
    """Every option name this runtime understands (for the OCI features document)."""
    return sorted(set(FLAGS) | set(PROPAGATION) | EXTENSIONS)
