"""The OCI features document of this runtime (runtime-spec features.md, features-schema.json).

It lists what nano-sandbox itself implements — nothing it does not: every list is taken from the
code that does the work (mount option table, capability table, namespace table, the seccomp
layer), so the document cannot drift from the implementation. Where the running host lacks
something the runtime supports (a namespace type, libseccomp), the host's limit wins.
"""

from __future__ import annotations

import os

from nano_sandbox import OCI_VERSION, OCI_VERSION_MIN, __version__

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def _namespaces() -> list[str]:
    from nano_sandbox.linux.syscalls import NAMESPACES

    have = set(os.listdir("/proc/self/ns")) if os.path.isdir("/proc/self/ns") else set()
    return sorted(t for t, (_flag, name) in NAMESPACES.items() if not have or name in have)


def _seccomp() -> dict:
    from nano_sandbox.linux import seccomp

    if not seccomp.available():
        return {"enabled": False}
    flags = seccomp.supported_flags()
    return {
        "enabled": True,
        "actions": seccomp.supported_actions(),
        "operators": seccomp.supported_operators(),
        "archs": seccomp.supported_archs(),
        "knownFlags": flags,
        "supportedFlags": flags,
    }


def features() -> dict:
    """Return the features document as a dict (JSON-ready)."""
    from nano_sandbox.linux import caps, mountopts

    annotations = {"io.github.nano-sandbox.version": __version__, "io.github.nano-sandbox.explain": "true"}
    try:
        from nano_sandbox.linux import seccomp

        if seccomp.available():
            annotations["io.github.seccomp.libseccomp.version"] = ".".join(map(str, seccomp.version()))
    except Exception:  # noqa: BLE001 - libseccomp missing: seccomp simply reads as disabled
        pass
    try:
        from nano_sandbox.cgroups import devices_bpf

        v2_devices = bool(devices_bpf.v2_devices_supported())
    except Exception:  # noqa: BLE001
        v2_devices = False
    annotations["io.github.nano-sandbox.cgroup2.devices"] = "true" if v2_devices else "false"
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mountopts.supported(),
        "linux": {
            "namespaces": _namespaces(),
            "capabilities": caps.kernel_cap_names(),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": annotations,
    }
