"""The benchmark (``python -m nano_sandbox.bench``) runs end to end on nk-runtime alone: it
measures, writes the JSON it documents, makes no failed call and leaves nothing behind. No timed
assertion: the figures themselves are the lead's to read on a quiet machine."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO

pytestmark = [pytest.mark.root, pytest.mark.slow]

LIFECYCLE = ("create", "start", "state", "kill", "delete")


def test_quick_bench_on_nk_runtime_writes_complete_json(tmp_path, busybox_rootfs):
    out_json = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "nano_sandbox.bench", "--quick", "--only", "run,state", "--runs", "2",
           "--runtime-only", "nk-runtime", "--json", str(out_json)]
    # output through files, not pipes: nothing a container could inherit and hold open
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        r = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=120)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    assert r.returncode == 0, f"bench failed ({r.returncode}):\n{stderr}\n{stdout}"
    data = json.loads(out_json.read_text())

    assert data["schema"] == "nano-sandbox-bench/1"
    assert data["completed"] is True
    assert set(data) >= {"machine", "settings", "runtimes", "metrics", "growth", "errors", "errors_by_phase", "leftovers"}
    assert data["settings"]["runs"] == 2 and data["settings"]["phases"] == ["run", "lifecycle"]
    assert list(data["runtimes"]) == ["nk-runtime"]
    assert data["runtimes"]["nk-runtime"]["available"] is True
    assert data["machine"]["cgroup_layout"] in ("v1", "v2", "hybrid")

    for key in ("run", *LIFECYCLE):
        metric = data["metrics"][key]
        assert metric["unit"] == "ms"
        st = metric["runtimes"]["nk-runtime"]
        assert st["n"] == 2, key
        assert 0 < st["min"] <= st["median"] <= st["max"]
        assert st["p10"] <= st["median"] <= st["p90"]
    assert "throughput" not in data["metrics"] and "init_rss" not in data["metrics"]

    assert data["errors"] == {"nk-runtime": 0}, data.get("error_samples")
    assert data["leftovers"] == []
    assert "run of /bin/true" in stdout and "left over: nothing" in stdout
