"""Build the ``transitions`` Machine from the statechart and fire its triggers.

``build_machine(chart, actions, guards)`` turns every :class:`~.chart.TransitionDef` into a
``transitions`` transition whose ``before`` callbacks run the named kernel actions in order (an
exception leaves the state unchanged, as ``transitions`` guarantees for ``before``), whose
``after`` callbacks run once the state has changed (saving the state file), and whose
``conditions`` are the named guards. The machine is built with ``auto_transitions=False`` (no
``to_<state>()`` back doors) and ``send_event=True``.

:class:`Container` is the model: it carries the container's :class:`~nano_sandbox.state.store.State`
and what the current operation needs (its options, the init's handles). Its ``status`` attribute
is owned by the machine: nothing else assigns it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from nano_sandbox import errors
from nano_sandbox.lifecycle.chart import Chart, load_chart

Action = Callable[["Container"], None]
Guard = Callable[["Container"], bool]


class Container:
    """The model the machine drives: one container during one ``nk-runtime`` operation.

    Attributes:
        id: container id.
        root: runtime state root.
        state: the loaded (or, during create, new) state record; may be None before create.
        opts: the operation's options (pid_file, signal, force, ...), a plain namespace.
        status: the machine's current state name (set by the machine only).
        scratch: per-operation working data shared by the actions (init handle, cgroup manager).
        narrator: explain-mode narrator or None.
        journal: trace journal writer or None.
    """

    def __init__(self, cid: str, root: str, state: Any = None, opts: Any = None) -> None:
        self.id = cid
        self.root = root
        self.state = state
        self.opts = opts
        self.scratch: dict[str, Any] = {}
        self.narrator: Any = None
        self.journal: Any = None
        self.chart: Chart | None = None
        from nano_sandbox import log

        self.log = log.get()

    # The machine calls this around each named action.
    def run_action(self, name: str, fn: Action, phase: str) -> None:
        from nano_sandbox.linux import syscalls

        narrator = self.narrator
        recorder = None
        if narrator is not None:
            recorder = syscalls.Recorder()
            syscalls.RECORDER = recorder
            narrator.action_start(name, self.chart.actions[name].explain if self.chart else "")
        t0 = time.monotonic_ns()
        err: BaseException | None = None
        try:
            fn(self)
        except BaseException as e:
            err = e
            raise
        finally:
            dt = time.monotonic_ns() - t0
            if recorder is not None:
                syscalls.RECORDER = None
            if narrator is not None:
                narrator.action_done(name, recorder.take() if recorder else [], dt, err)
            if self.journal is not None:
                self.journal.entry("action", name, t0, dt, err)


def _wrap(name: str, fn: Action, phase: str) -> Callable[[Any], None]:
    def callback(event: Any) -> None:
        event.model.run_action(name, fn, phase)

    callback.__name__ = f"action_{name}"
    return callback


def _wrap_guard(name: str, fn: Guard) -> Callable[[Any], bool]:
    def condition(event: Any) -> bool:
        return bool(fn(event.model))

    condition.__name__ = f"guard_{name}"
    return condition


def build_machine(chart: Chart, actions: dict[str, Action], guards: dict[str, Guard]):
    """Return a ``transitions.Machine`` (no models yet) for ``chart``.

    Raises:
        KeyError: the chart names an action or guard with no callable.
    """
    from transitions import Machine

    states = [{"name": name, "final": s.final} for name, s in chart.states.items()]
    m = Machine(
        model=None,
        states=states,
        initial=chart.initial,
        auto_transitions=False,
        send_event=True,
        model_attribute="status",
        ignore_invalid_triggers=False,
    )
    for t in chart.transitions:
        m.add_transition(
            t.trigger,
            list(t.source),
            t.dest,  # None: internal transition (the state does not change, no exit/enter)
            conditions=[_wrap_guard(t.guard, guards[t.guard])] if t.guard else None,
            before=[_wrap(a, actions[a], "before") for a in t.actions],
            after=[_wrap(a, actions[a], "after") for a in t.after],
        )
    return m


_MACHINE = None


def machine():
    """The process-wide machine built from the packaged chart and the real kernel actions."""
    global _MACHINE
    if _MACHINE is None:
        from nano_sandbox.lifecycle.actions import ACTIONS, GUARDS

        _MACHINE = build_machine(load_chart(), ACTIONS, GUARDS)
    return _MACHINE


def attach(container: Container, status: str, m=None) -> Container:
    """Add ``container`` to the machine ``m`` (default: :func:`machine`) in state ``status``.

    No callbacks run (``add_model`` with ``initial``): this rebuilds a persisted container's
    machine in a new process.
    """
    m = m or machine()
    container.chart = load_chart()
    m.add_model(container, initial=status)
    return container


def fire(container: Container, trigger: str, verb: str | None = None, **kwargs: Any) -> None:
    """Fire ``trigger`` on ``container``.

    Raises:
        errors.InvalidState: the trigger may not fire from the current status (message names it
            and the statuses it needs, e.g. ``cannot start container "web": container is running
            (start needs created)``).
        errors.NkError: a guard refused, or an action failed (the state is unchanged).
    """
    chart = container.chart or load_chart()
    sources = chart.sources_of(trigger)
    status = container.status  # type: ignore[attr-defined]
    v = verb or (chart.transitions_for(trigger)[0].verb if chart.transitions_for(trigger) else trigger)
    if status not in sources:
        raise errors.InvalidState(v, container.id, status, sources)
    before = status
    t0 = time.monotonic_ns()
    if container.narrator is not None:
        tr = chart.transitions_for(trigger)
        dest = next((t.dest for t in tr if status in t.source), None)
        container.narrator.transition(trigger, status, dest or status)
    err: BaseException | None = None
    try:
        ok = container.trigger(trigger, **kwargs)  # type: ignore[attr-defined]
    except BaseException as e:
        err = e
        raise
    finally:
        if container.narrator is not None:
            container.narrator.transition_done(trigger, time.monotonic_ns() - t0, err)
        if container.journal is not None:
            container.journal.entry("transition", f"{trigger}: {before} -> {container.status}", t0, time.monotonic_ns() - t0, err)  # type: ignore[attr-defined]
    if not ok:
        guard = next((t.guard for t in chart.transitions_for(trigger) if before in t.source), None)
        reason = (chart.guards[guard].refuse or chart.guards[guard].explain) if guard else "a guard refused"
        raise errors.NkError(f'cannot {v} container "{container.id}": {reason}')
    if container.state is not None and before != container.status:  # type: ignore[attr-defined]
        container.state.previous_status = before
