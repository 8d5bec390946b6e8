"""OCI hooks on real containers (runtime-spec config.md "POSIX-platform Hooks"): all six kinds run
at their point of the lifecycle, in the right namespace, with the state JSON on stdin; failures
behave as the spec says; timeouts kill the hook."""

from __future__ import annotations

import json
import os

import pytest

from conftest import cgroup_dirs_of, unique_id

pytestmark = pytest.mark.root

SLEEP = ["sleep", "1000"]


def hook_script(tmp_path, name: str, body: str) -> str:
    """A host-side hook: a shell script (run in the runtime namespace or before pivot_root)."""
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return str(p)


def test_all_six_hooks_run_with_the_state_on_stdin(nk, make_bundle, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    record = hook_script(tmp_path, "record.sh", f'cat > "{out}/$1.json"; echo "$HOOK_VAR" > "{out}/$1.env"; cat /proc/self/ns/mnt 2>/dev/null; readlink /proc/self/ns/mnt > "{out}/$1.mntns"')

    def hook(kind):
        return {"path": record, "args": ["record.sh", kind], "env": [f"HOOK_VAR=var-{kind}"]}

    def mutate(c):
        c["annotations"] = {"org.example.k": "v"}
        c["hooks"] = {
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            # startContainer runs inside the container: its path resolves in the container's root.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer.json"]}],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        }

    cid = unique_id("hooks")
    b = make_bundle(["sh", "-c", "cat /tmp/startContainer.json; sleep 1000"], mutate)
    nk.ok("create", "-b", b, cid)
    pid = nk.state(cid)["pid"]
    for kind in ("prestart", "createRuntime", "createContainer"):
        doc = json.loads((out / f"{kind}.json").read_text())
        assert doc == {"ociVersion": "1.3.0", "id": cid, "status": "created", "pid": pid, "bundle": str(b),
                       "annotations": {"org.example.k": "v"}}, kind
        assert (out / f"{kind}.env").read_text() == f"var-{kind}\n"
    assert not (out / "poststart.json").exists()
    host_mntns = os.readlink("/proc/self/ns/mnt")
    assert (out / "createRuntime.mntns").read_text().strip() == host_mntns  # runtime namespace
    assert (out / "createContainer.mntns").read_text().strip() == os.readlink(f"/proc/{pid}/ns/mnt")  # container's
    nk.ok("start", cid)
    post = json.loads((out / "poststart.json").read_text())
    assert post["status"] == "running" and post["pid"] == pid
    nk.ok("kill", cid, "KILL")
    nk.wait_status(cid, "stopped")
    assert not (out / "poststop.json").exists()
    nk.ok("delete", cid)
    stop = json.loads((out / "poststop.json").read_text())
    assert stop == {"ociVersion": "1.3.0", "id": cid, "status": "stopped", "bundle": str(b), "annotations": {"org.example.k": "v"}}


def test_start_container_hook_sees_created_and_runs_inside(nk, make_bundle):
    def mutate(c):
        c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/s.json; hostname > /tmp/s.host"]}]}

    cid = unique_id("sc")
    r = nk("run", "-b", make_bundle(["sh", "-c", "cat /tmp/s.json; echo; cat /tmp/s.host"], mutate), cid)
    assert r.returncode == 0, r.stderr
    doc_line, host = r.stdout.splitlines()
    doc = json.loads(doc_line)
    assert doc["status"] == "created" and doc["id"] == cid and doc["pid"] > 0
    assert host == "nano-sandbox"


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_destroys_the_container(nk, make_bundle, tmp_path, kind):
    fail = hook_script(tmp_path, "fail.sh", "echo hook-said-no >&2; exit 3")
    cid = unique_id("hookfail")
    r = nk("create", "-b", make_bundle(SLEEP, lambda c: c.update(hooks={kind: [{"path": fail}]})), cid)
    assert r.returncode == 1
    assert f"{kind} hook 0 ({fail}): exited with status 3, output: hook-said-no" in r.stderr
    assert not (nk.root / cid).exists()
    assert cgroup_dirs_of(cid) == []


def test_failing_start_container_hook_fails_start(nk, make_bundle):
    cid = unique_id("schook")
    b = make_bundle(SLEEP, lambda c: c.update(hooks={"startContainer": [{"path": "/bin/false"}]}))
    nk.ok("create", "-b", b, cid)
    r = nk("start", cid)
    assert r.returncode == 1
    assert "startContainer hook 0 (/bin/false): exited with status 1" in r.stderr
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_failing_poststart_is_only_a_warning(nk, make_bundle, tmp_path):
    cid = unique_id("poststart")
    fail = hook_script(tmp_path, "fail.sh", "exit 5")
    nk.ok("create", "-b", make_bundle(SLEEP, lambda c: c.update(hooks={"poststart": [{"path": fail}]})), cid)
    r = nk("start", cid)
    assert r.returncode == 0
    assert f"warning: poststart hook 0 ({fail}): exited with status 5" in r.stderr
    assert nk.status(cid) == "running"


def test_failing_poststop_warns_and_the_others_still_run(nk, make_bundle, tmp_path):
    cid = unique_id("poststop")
    fail = hook_script(tmp_path, "fail.sh", "exit 4")
    mark = tmp_path / "second-ran"
    second = hook_script(tmp_path, "second.sh", f"touch {mark}")
    nk.ok("create", "-b", make_bundle(["true"], lambda c: c.update(hooks={"poststop": [{"path": fail}, {"path": second}]})), cid)
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped")
    r = nk("delete", cid)
    assert r.returncode == 0
    assert f"warning: poststop hook 0 ({fail}): exited with status 4" in r.stderr
    assert mark.exists()
    assert not (nk.root / cid).exists()


def test_hook_timeout_kills_the_hook_and_fails_the_step(nk, make_bundle, tmp_path):
    slow = hook_script(tmp_path, "slow.sh", "sleep 30")
    cid = unique_id("timeout")
    r = nk("create", "-b", make_bundle(SLEEP, lambda c: c.update(hooks={"createRuntime": [{"path": slow, "timeout": 1}]})), cid)
    assert r.returncode == 1
    assert f"createRuntime hook 0 ({slow}): timed out after 1s (killed)" in r.stderr
    assert not (nk.root / cid).exists()


def test_missing_hook_binary(nk, make_bundle, tmp_path):
    cid = unique_id("nohook")
    missing = str(tmp_path / "no-such-hook")
    r = nk("create", "-b", make_bundle(SLEEP, lambda c: c.update(hooks={"prestart": [{"path": missing}]})), cid)
    assert r.returncode == 1
    assert f"prestart hook 0 ({missing}): cannot execute: No such file or directory" in r.stderr
