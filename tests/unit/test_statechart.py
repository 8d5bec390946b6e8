"""The statechart file and its binding to code: every action named has a callable, every callable
is used, every state is reachable, and forbidden triggers fail with the spec's wording."""

from __future__ import annotations

import pytest

from nano_sandbox import errors
from nano_sandbox.lifecycle import actions
from nano_sandbox.lifecycle.chart import load_chart
from nano_sandbox.lifecycle.machine import Container, attach, build_machine, fire


def test_chart_is_consistent():
    chart = load_chart()
    assert chart.check() == []
    assert set(chart.states) == {"creating", "created", "running", "paused", "stopped", "deleted"}
    assert [s for s, d in chart.states.items() if d.spec] == ["creating", "created", "running", "stopped"]


def test_every_action_has_a_callable_and_every_callable_is_used():
    chart = load_chart()
    used = {a for t in chart.transitions for a in t.actions + t.after}
    assert used - set(actions.ACTIONS) == set(), "actions named in the chart without a callable"
    assert set(actions.ACTIONS) - used == set(), "callables no transition uses"
    assert set(chart.actions) == used, "explanations for actions no transition uses, or actions without one"
    guards = {t.guard for t in chart.transitions if t.guard}
    assert guards == set(actions.GUARDS) == set(chart.guards)


def test_every_action_is_explained_in_plain_words():
    chart = load_chart()
    for name, a in chart.actions.items():
        assert len(a.explain.split()) >= 8, name
    for name, s in chart.states.items():
        assert len(s.explain.split()) >= 8, name


def test_every_state_is_reachable_from_creating():
    chart = load_chart()
    seen, todo = {"creating"}, ["creating"]
    while todo:
        s = todo.pop()
        for t in chart.transitions:
            if s in t.source and t.dest and t.dest not in seen:
                seen.add(t.dest)
                todo.append(t.dest)
    assert seen == set(chart.states)


def _fake_machine(log):
    chart = load_chart()
    fake = {name: (lambda c, name=name: log.append(name)) for name in actions.ACTIONS}
    return chart, build_machine(chart, fake, {"has_process": lambda c: True})


def test_transitions_run_exactly_their_actions_in_order():
    log: list[str] = []
    chart, m = _fake_machine(log)
    c = attach(Container("web", "/nonexistent"), "creating", m)
    fire(c, "create")
    assert c.status == "created"
    assert log == chart.transitions_for("create")[0].actions + ["save_state"]
    log.clear()
    fire(c, "start")
    assert (c.status, log) == ("running", ["release_exec_fifo", "run_poststart_hooks", "save_state"])
    log.clear()
    fire(c, "kill")
    assert (c.status, log) == ("running", ["send_signal"])


@pytest.mark.parametrize(
    ("status", "trigger", "message"),
    [
        ("running", "start", 'cannot start container "web": container is running (start needs created)'),
        ("stopped", "kill", 'cannot kill container "web": container is stopped (kill needs created or running or paused)'),
        ("running", "delete", 'cannot delete container "web": container is running (delete needs stopped)'),
        ("created", "pause", 'cannot pause container "web": container is created (pause needs running)'),
        ("running", "resume", 'cannot resume container "web": container is running (resume needs paused)'),
        ("stopped", "exec", 'cannot exec container "web": container is stopped (exec needs created or running)'),
    ],
)
def test_forbidden_triggers_name_the_status(status, trigger, message):
    log: list[str] = []
    _chart, m = _fake_machine(log)
    c = attach(Container("web", "/nonexistent"), status, m)
    with pytest.raises(errors.InvalidState) as e:
        fire(c, trigger)
    assert str(e.value) == message
    assert log == [] and c.status == status


def test_a_failing_action_leaves_the_state_unchanged():
    chart = load_chart()
    log: list[str] = []

    def boom(c):
        log.append("release_exec_fifo")
        raise errors.NkError("exec failed")

    fake = {name: (lambda c, name=name: log.append(name)) for name in actions.ACTIONS}
    fake["release_exec_fifo"] = boom
    m = build_machine(chart, fake, {"has_process": lambda c: True})
    c = attach(Container("web", "/x"), "created", m)
    with pytest.raises(errors.NkError, match="exec failed"):
        fire(c, "start")
    assert c.status == "created"
    assert log == ["release_exec_fifo"]  # nothing after the failure, no save_state


def test_a_guard_refuses_start_without_process():
    chart = load_chart()
    fake = {name: (lambda c: None) for name in actions.ACTIONS}
    m = build_machine(chart, fake, {"has_process": lambda c: False})
    c = attach(Container("web", "/x"), "created", m)
    with pytest.raises(errors.NkError) as e:
        fire(c, "start")
    assert str(e.value) == 'cannot start container "web": the config has no process to run (runtime-spec: start fails when process is absent)'
    assert c.status == "created"


def test_no_auto_transitions_back_doors():
    _chart, m = _fake_machine([])
    c = attach(Container("web", "/x"), "running", m)
    assert not hasattr(c, "to_stopped")
    assert not hasattr(c, "to_running")
