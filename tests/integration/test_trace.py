"""``nk-runtime trace`` on real containers: the journal lists every transition taken, with exactly
the kernel actions the statechart names for it, in order, and the container init's steps within
create; failures are recorded with their error; the journal lasts until delete."""

from __future__ import annotations

import json

import pytest

from conftest import unique_id
from nano_sandbox.lifecycle.chart import load_chart

pytestmark = pytest.mark.root

SLEEP = ["sleep", "1000"]


def _groups(entries: list[dict]) -> list[tuple[dict, list[dict], list[dict]]]:
    """Split a trace (lifecycle order) into (transition, its actions, its init steps)."""
    groups: list[tuple[dict, list[dict], list[dict]]] = []
    for e in entries:
        if e["kind"] == "transition":
            groups.append((e, [], []))
        else:
            assert groups, f"{e} comes before any transition"
            groups[-1][1 if e["kind"] == "action" else 2].append(e)
    return groups


def _chart_transition(name: str):
    """The chart's transition for a journal name ``"<trigger>: <source> -> <dest>"``."""
    trigger, arrow = name.split(": ", 1)
    source, dest = arrow.split(" -> ")
    [t] = [t for t in load_chart().transitions_for(trigger) if source in t.source]
    assert dest == (t.dest or source), name
    return t


def _what_column(text: str) -> list[tuple[int, str]]:
    """(indentation, name) of each entry line of the text timeline."""
    lines = text.splitlines()
    col = lines[0].index("what")
    out = []
    for line in lines[1:]:
        what = line[col:]
        out.append((len(what) - len(what.lstrip(" ")), what.strip()))
    return out


def test_trace_lists_the_charts_actions_for_each_transition(nk, make_bundle):
    cid = unique_id("trace")
    nk.ok("create", "--bundle", make_bundle(SLEEP), cid)
    nk.ok("start", cid)
    nk.ok("kill", cid, "KILL")
    nk.wait_status(cid, "stopped")
    # The next locked operation records what the kernel says: the init is gone (process_exited);
    # kill itself then refuses.
    r = nk("kill", cid)
    assert r.returncode == 1 and "container not running" in r.stderr

    entries = json.loads(nk.ok("trace", "--format", "json", cid))
    assert all(set(e) >= {"t", "ns", "verb", "kind", "name", "ok"} for e in entries)
    assert all(e["ok"] is True and "error" not in e for e in entries)
    groups = _groups(entries)
    assert [g[0]["name"] for g in groups] == [
        "create: creating -> created",
        "start: created -> running",
        "kill: running -> running",
        "process_exited: running -> stopped",
    ]
    assert [g[0]["verb"] for g in groups] == ["create", "start", "kill", "kill"]
    for transition, actions, steps in groups:
        t = _chart_transition(transition["name"])
        assert [a["name"] for a in actions] == t.actions + t.after, transition["name"]
        assert all(a["verb"] == transition["verb"] for a in actions)
        # a transition starts before its first action and lasts at least as long as its actions
        assert transition["t"] <= actions[0]["t"]
        assert transition["ns"] >= sum(a["ns"] for a in actions)
        if t.trigger != "create":
            assert steps == [], f"init steps outside create: {steps}"
    starts = [g[0]["t"] for g in groups]
    assert starts == sorted(starts)

    # The init's steps, listed under the create actions that waited for them.
    create_entries = entries[: entries.index(groups[1][0])]
    steps = [e["name"] for e in create_entries if e["kind"] == "step"]
    assert "create namespaces" in steps
    assert "mount proc on /proc" in steps
    assert any(s.startswith("pivot_root into ") for s in steps)
    owners = {}
    current = None
    for e in create_entries[1:]:
        if e["kind"] == "action":
            current = e["name"]
        else:
            owners.setdefault(current, []).append(e["name"])
    assert set(owners) <= {"spawn_init", "enter_namespaces", "prepare_rootfs", "run_create_runtime_hooks", "enter_rootfs"}

    # The text timeline shows the same entries, in the same order, indented by kind.
    text = nk.ok("trace", cid)
    assert text.splitlines()[0].split() == ["at", "ms", "took", "ms", "verb", "what"]
    indent = {"transition": 0, "action": 2, "step": 4}
    assert _what_column(text) == [(indent[e["kind"]], e["name"]) for e in entries]
    at = [float(line.split()[0]) for line in text.splitlines()[1:]]
    assert at[0] == 0.0 and min(at) == 0.0

    nk.ok("delete", cid)
    r = nk("trace", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: container "{cid}" does not exist')


def test_trace_records_a_failed_transition_with_its_error(nk, make_bundle):
    cid = unique_id("tracefail")
    # execve itself refused (by a seccomp rule): start fails after create succeeded
    no_exec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO"}]}
    nk.ok("create", "-b", make_bundle(["true"], lambda c: c["linux"].update(seccomp=no_exec)), cid)
    r = nk("start", cid)
    assert r.returncode == 1
    error = 'exec: "true": operation not permitted'
    entries = json.loads(nk.ok("trace", "--format", "json", cid))
    transition, actions, _ = _groups(entries)[1]
    assert transition["name"] == "start: created -> created"  # the state did not change
    assert (transition["ok"], transition["error"]) == (False, error)
    # the failing action is recorded, and nothing after it ran
    assert [(a["name"], a["ok"], a.get("error")) for a in actions] == [("release_exec_fifo", False, error)]
    text = nk.ok("trace", cid)
    assert f"release_exec_fifo  ✗ {error}" in text
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_trace_of_an_unknown_container_fails_with_the_standard_error(nk):
    for args in (["trace", "no-such-ctr"], ["trace", "--format", "json", "no-such-ctr"]):
        r = nk(*args)
        assert (r.returncode, r.stdout, r.stderr.strip()) == (1, "", 'nk-runtime: container "no-such-ctr" does not exist')
    r = nk("trace", "bad id")
    assert r.returncode == 1 and "container id" in r.stderr
