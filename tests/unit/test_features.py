"""``nk-runtime features`` and ``--version``: the features document validates against the
official schema and lists what the runtime implements (from the same tables the code uses)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import schema_validator

from nano_sandbox import OCI_VERSION, __version__
from nano_sandbox.linux import mountopts
from nano_sandbox.spec.features import features


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nano_sandbox", *args], capture_output=True, text=True, timeout=60)


def test_features_validates_against_the_schema():
    doc = json.loads(_cli("features").stdout)
    v = schema_validator("features-schema.json")
    errors = sorted(v.iter_errors(doc), key=str)
    assert errors == []
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["ociVersionMax"] == OCI_VERSION


def test_features_lists_what_the_code_implements():
    doc = features()
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    assert doc["mountOptions"] == mountopts.supported()
    assert "tmpcopyup" in doc["mountOptions"] and "rbind" in doc["mountOptions"]
    lin = doc["linux"]
    assert lin["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True}
    assert lin["apparmor"] == {"enabled": False} and lin["selinux"] == {"enabled": False}
    assert set(lin["namespaces"]) <= {"user", "mount", "pid", "network", "ipc", "uts", "cgroup", "time"}
    assert lin["capabilities"][0] == "CAP_CHOWN"


def test_version_prints_runtime_spec_and_python():
    r = _cli("--version")
    lines = r.stdout.splitlines()
    assert r.returncode == 0
    assert lines[0] == f"nk-runtime version {__version__}"
    assert lines[1] == f"spec: {OCI_VERSION}"
    assert lines[2] == f"python: {sys.version.split()[0]}"


def test_unknown_verb_and_flag_are_usage_errors():
    r = _cli("frobnicate")
    assert (r.returncode, r.stderr.strip()) == (2, "nk-runtime: unknown command 'frobnicate' (see nk-runtime --help)")
    r = _cli("--frob", "list")
    assert (r.returncode, r.stderr.strip()) == (2, "nk-runtime: flag provided but not defined: --frob")
