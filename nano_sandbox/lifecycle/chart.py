"""The statechart file, decoded: ``statecharts/lifecycle.toml`` → :class:`Chart`.

The TOML is decoded with ``msgspec.toml`` into the Structs below, so a typo in the file (an
unknown state in a transition, a missing explanation) is caught when the chart loads, not when a
container happens to take that path. :func:`load_chart` caches the decoded chart per process.
"""

from __future__ import annotations

import os

import msgspec


class StateDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One state: ``spec`` tells whether runtime-spec defines it; ``final`` marks ``deleted``."""

    explain: str
    spec: bool = False
    final: bool = False


class TransitionDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One transition: fired by ``trigger`` from any of ``source``; ``dest`` None keeps the state
    (an internal transition: ``kill``, ``exec``, ``update``). ``actions`` are kernel action names
    run in order before the state changes; ``after`` run once it has changed. ``verb`` is the CLI
    verb that fires it (for error messages)."""

    trigger: str
    source: list[str]
    dest: str | None = None
    verb: str = ""
    guard: str | None = None
    explain: str = ""
    actions: list[str] = []
    after: list[str] = []


class ActionDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A kernel action and its plain-words explanation."""

    explain: str


class GuardDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A guard (condition), its explanation, and the reason given when it refuses."""

    explain: str
    refuse: str = ""


class Chart(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole lifecycle definition."""

    version: int
    initial: str
    states: dict[str, StateDef]
    transitions: list[TransitionDef]
    actions: dict[str, ActionDef]
    guards: dict[str, GuardDef] = {}

    def transitions_for(self, trigger: str) -> list[TransitionDef]:
        """All transitions fired by ``trigger``."""
        return [t for t in self.transitions if t.trigger == trigger]

    def sources_of(self, trigger: str) -> list[str]:
        """The states from which ``trigger`` may fire, in chart order."""
        out: list[str] = []
        for t in self.transitions_for(trigger):
            out += [s for s in t.source if s not in out]
        return out

    def check(self) -> list[str]:
        """Return the consistency problems of the chart (unknown states, actions or guards)."""
        problems = []
        if self.initial not in self.states:
            problems.append(f"initial state {self.initial!r} is not declared")
        for i, t in enumerate(self.transitions):
            for s in t.source + ([t.dest] if t.dest else []):
                if s not in self.states:
                    problems.append(f"transitions[{i}] ({t.trigger}): unknown state {s!r}")
            for a in t.actions + t.after:
                if a not in self.actions:
                    problems.append(f"transitions[{i}] ({t.trigger}): action {a!r} has no [actions.{a}] entry")
            if t.guard and t.guard not in self.guards:
                problems.append(f"transitions[{i}] ({t.trigger}): guard {t.guard!r} is not declared")
        return problems


def chart_path() -> str:
    """Locate ``statecharts/lifecycle.toml``: beside the package in a source checkout (or an
    editable install), else in ``<prefix>/share/nano-sandbox/statecharts`` (a wheel install)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = os.path.join(here, "statecharts", "lifecycle.toml")
    if os.path.exists(p):
        return p
    import sys

    return os.path.join(sys.prefix, "share", "nano-sandbox", "statecharts", "lifecycle.toml")


_CHART: Chart | None = None


def load_chart(path: str | None = None) -> Chart:
    """Decode the statechart (cached per process when ``path`` is None).

    Raises:
        msgspec.ValidationError: the file does not match the Structs (names the TOML path).
        ValueError: the chart is inconsistent (see :meth:`Chart.check`).
    """
    global _CHART
    if path is None and _CHART is not None:
        return _CHART
    with open(path or chart_path(), "rb") as f:
        chart = msgspec.toml.decode(f.read(), type=Chart)
    problems = chart.check()
    if problems:
        raise ValueError("statechart: " + "; ".join(problems))
    if path is None:
        _CHART = chart
    return chart
