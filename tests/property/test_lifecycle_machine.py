"""Hypothesis drives the lifecycle machine (with a fake kernel) through random sequences of
operations and checks every step against the OCI lifecycle: the status each operation leads to,
which operations must fail, which kernel actions ran, and that cleanup runs exactly once."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nano_sandbox import errors
from nano_sandbox.lifecycle import actions
from nano_sandbox.lifecycle.chart import load_chart
from nano_sandbox.lifecycle.machine import Container, attach, build_machine, fire

# The OCI lifecycle as the spec states it (runtime.md "Lifecycle", runc's paused extension):
# operation -> {status it may start from: status it leads to}
MODEL = {
    "create": {"creating": "created"},
    "start": {"created": "running"},
    "kill": {"created": "created", "running": "running", "paused": "paused"},
    "process_exited": {"creating": "stopped", "created": "stopped", "running": "stopped", "paused": "stopped"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "delete": {"stopped": "deleted"},
    "force_delete": {"created": "deleted", "running": "deleted", "paused": "deleted"},
}
CLEANUP = ("remove_cgroup", "remove_state_dir")


class FakeKernel:
    """Records every kernel action and can make one fail."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.fail: str | None = None

    def action(self, name):
        def run(c):
            if self.fail == name:
                self.fail = None
                raise errors.HostError(f"{name}: injected failure")
            self.log.append(name)

        return run


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chart = load_chart()
        self.kernel = FakeKernel()
        self.machine = build_machine(self.chart, {n: self.kernel.action(n) for n in actions.ACTIONS}, {"has_process": lambda c: True})
        self.cleanups = 0

    @initialize()
    def new_container(self):
        self.c = attach(Container("fuzz", "/nonexistent"), "creating", self.machine)
        self.expected = "creating"

    def _do(self, trigger: str, fail: str | None = None):
        before_log = len(self.kernel.log)
        allowed = MODEL[trigger].get(self.expected)
        self.kernel.fail = fail
        if allowed is None:
            with pytest.raises(errors.InvalidState):
                fire(self.c, trigger)
            assert len(self.kernel.log) == before_log, "a refused operation ran kernel actions"
            self.kernel.fail = None
            return
        tr = next(t for t in self.chart.transitions_for(trigger) if self.expected in t.source)
        if fail is not None and fail in tr.actions:
            with pytest.raises(errors.HostError):
                fire(self.c, trigger)
            ran = self.kernel.log[before_log:]
            assert ran == tr.actions[: tr.actions.index(fail)], "actions after a failure ran"
            assert self.c.status == self.expected, "a failed transition changed the state"
            return
        self.kernel.fail = None
        fire(self.c, trigger)
        ran = self.kernel.log[before_log:]
        assert ran == tr.actions + tr.after
        self.expected = allowed
        self.cleanups += sum(ran.count(a) for a in CLEANUP)

    @precondition(lambda self: self.expected == "deleted")
    @rule()
    def another_container(self):
        self.c = attach(Container("fuzz", "/nonexistent"), "creating", self.machine)
        self.expected = "creating"
        self.cleanups = 0

    @precondition(lambda self: self.expected != "deleted")
    @rule(trigger=st.sampled_from(sorted(MODEL)))
    def operate(self, trigger):
        self._do(trigger)

    @precondition(lambda self: self.expected == "creating")
    @rule(step=st.sampled_from(load_chart().transitions_for("create")[0].actions))
    def create_fails(self, step):
        self._do("create", fail=step)
        # the runtime then aborts: every undo action runs once
        fire(self.c, "abort")
        self.expected = "deleted"
        self.cleanups += 2

    @invariant()
    def status_matches_the_model(self):
        assert self.c.status == self.expected

    @invariant()
    def cleanup_runs_exactly_once_when_deleted(self):
        assert self.cleanups == (len(CLEANUP) if self.expected == "deleted" else 0)


TestLifecycleMachine = Lifecycle.TestCase
