"""Explain mode (``-E``) on a real ``run``: stderr narrates every transition taken and, numbered,
exactly the kernel actions the statechart lists for each, in order, with the container init's
steps inside create; plain text in a pipe, colour on a terminal unless ``NO_COLOR``; JSON lines
with ``--log-format json``. Stdout stays the container's own output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading

import pytest

from conftest import unique_id
from nano_sandbox.lifecycle.chart import load_chart

pytestmark = pytest.mark.root

TRANSITION = re.compile(r"^== (\w+): (\w+) (?:→ (\w+)|\(stays \w+\))$")
ACTION = re.compile(r"^\[(\d+)\] (\w+)$")
STEP = re.compile(r"^    • in init: (.+?)  \d+\.\d\d ms$")
RUN_TRANSITIONS = [("create", "creating", "created"), ("start", "created", "running"),
                   ("process_exited", "running", "stopped"), ("delete", "stopped", "deleted")]


def _chart_actions(trigger: str, source: str) -> list[str]:
    [t] = [t for t in load_chart().transitions_for(trigger) if source in t.source]
    return t.actions + t.after


def _narration(stderr: str) -> list[tuple[tuple[str, str, str], list[str], list[str]]]:
    """[((trigger, source, dest), [numbered action names], [init steps])] from text explain output."""
    out: list = []
    numbers = []
    for line in stderr.splitlines():
        if m := TRANSITION.match(line):
            out.append(((m.group(1), m.group(2), m.group(3) or m.group(2)), [], []))
        elif m := ACTION.match(line):
            assert out, f"action before any transition: {line}"
            numbers.append(int(m.group(1)))
            out[-1][1].append(m.group(2))
        elif m := STEP.match(line):
            out[-1][2].append(m.group(1))
    assert numbers == list(range(1, len(numbers) + 1)), "actions are numbered 1, 2, 3, ... in order"
    return out


def test_explain_run_narrates_every_action_of_every_transition(nk, make_bundle):
    cid = unique_id("explain")
    r = nk("-E", "run", "--bundle", make_bundle(["echo", "hello from the container"]), cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from the container\n"  # the narration never reaches stdout
    narration = _narration(r.stderr)
    assert [n[0] for n in narration] == RUN_TRANSITIONS
    for (trigger, source, _dest), actions, steps in narration:
        assert actions == _chart_actions(trigger, source), trigger
        if trigger != "create":
            assert steps == [], trigger
    steps = narration[0][2]
    assert "create namespaces" in steps and "mount proc on /proc" in steps
    assert any(s.startswith("pivot_root into ") for s in steps)
    # each action with its plain-words explanation from the chart, and its time
    chart = load_chart()
    flat = " ".join(r.stderr.split())
    for name in {a for _, actions, _ in narration for a in actions}:
        assert " ".join(chart.actions[name].explain.split()) in flat, name
    assert "unshare(CLONE_NEWPID|" in r.stderr and 'pivot_root(".", ".")' in r.stderr
    assert re.search(r"^    ✓ \d+\.\d\d ms$", r.stderr, re.M)
    assert "\033[" not in r.stderr  # not a terminal: no colour


def test_explain_json_lines(nk, make_bundle):
    cid = unique_id("explainj")
    r = nk("--log-format", "json", "-E", "run", "-b", make_bundle(["true"]), cid)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines()]
    assert lines and all("explain" in obj for obj in lines)
    transitions: list = []
    for obj in lines:
        if obj["explain"] == "transition":
            transitions.append(((obj["trigger"], obj["source"], obj["dest"]), []))
        elif obj["explain"] == "action":
            assert obj["ok"] is True and isinstance(obj["ms"], (int, float)) and isinstance(obj["calls"], list)
            transitions[-1][1].append(obj["action"])
    assert [t for t, _ in transitions] == RUN_TRANSITIONS
    for (trigger, source, _), actions in transitions:
        assert actions == _chart_actions(trigger, source)
    steps = [obj for obj in lines if obj["explain"] == "init-step"]
    assert steps and {s["action"] for s in steps} <= set(_chart_actions("create", "creating"))
    assert [obj["step"] for obj in lines if obj["explain"] == "action"] == list(range(1, 1 + sum(len(a) for _, a in transitions)))


def _run_on_a_terminal(nk, bundle, cid: str, env: dict) -> str:
    """Run ``nk-runtime -E run`` with stderr on a pseudo-terminal; return what it printed there."""
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    nk.created.add(cid)
    try:
        p = subprocess.run([*nk.binary, "--root", str(nk.root), "-E", "run", "-b", str(bundle), cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env, timeout=60)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    assert p.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_colour_on_a_terminal_unless_no_color(nk, make_bundle):
    bundle = make_bundle(["true"])
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _run_on_a_terminal(nk, bundle, unique_id("tty"), env)
    assert "\033[" in coloured
    plain = _run_on_a_terminal(nk, bundle, unique_id("nocolor"), {**env, "NO_COLOR": "1"})
    assert "\033[" not in plain
    assert "[1] validate_bundle" in plain
