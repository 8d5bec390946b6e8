"""The trace journal: ``<root>/<id>/journal``, one JSON line per transition, kernel action and
init step, with its monotonic start time (ns, CLOCK_MONOTONIC, comparable across processes),
duration (ns) and outcome. ``nk-runtime trace ID`` prints it; it lives in the state directory,
so it lasts until ``delete`` removes that.

A line is ``{"t": <start ns>, "ns": <duration ns>, "verb": "<CLI verb>", "kind":
"transition"|"action"|"step", "name": "...", "ok": true|false[, "error": "..."]}``. Each line is
made when its entry ends, so the file holds an action's init steps before the action and a
transition's actions before the transition (:func:`timeline` puts them back in lifecycle order);
a transition's name is ``"<trigger>: <source> -> <dest>"``.

Writing is cheap by design (measured: see the issue 7 note): entries are buffered in memory and
written with one ``O_APPEND`` write(2) when a transition ends (:meth:`Journal.entry` of kind
``transition``, which :func:`~nano_sandbox.lifecycle.machine.fire` records in a ``finally``, so
the entries of a transition that failed half way are written too), instead of an open, write and
close per entry. One write(2) of a few kilobytes to a regular file is never interleaved with
another process's, so concurrent writers cannot tear each other's lines. Entries made before the
state directory exists (create's first action) wait until :meth:`Journal.attach`.
"""

from __future__ import annotations

import os

from nano_sandbox.log import json_str

JOURNAL = "journal"

#: Entries kept in memory before a write even without a transition's end (bounds memory).
MAX_PENDING = 256


_q = json_str


class Journal:
    """Collects a container's journal entries for one operation and appends them to its file.

    Args:
        state_dir: the container's state directory, or None until it exists (create).
        verb: the CLI verb of this operation (recorded in each entry).
    """

    def __init__(self, state_dir: str | None, verb: str) -> None:
        self.verb = verb
        self.path = os.path.join(state_dir, JOURNAL) if state_dir else None
        self.pending: list[str] = []
        self._verb_json = _q(verb)

    def attach(self, state_dir: str) -> None:
        """The state directory now exists: entries will be written there (the buffered ones at
        the end of the current transition)."""
        self.path = os.path.join(state_dir, JOURNAL)

    def detach(self) -> None:
        """The state directory is gone (delete, abort): drop what is buffered and stop writing."""
        self.path = None
        self.pending = []

    def entry(self, kind: str, name: str, t0_ns: int, dt_ns: int, err: BaseException | None) -> None:
        """Record one entry: ``kind`` is ``transition``, ``action`` or ``step``; ``t0_ns`` is its
        CLOCK_MONOTONIC start and ``dt_ns`` its duration; ``err`` the exception if it failed.
        The end of a transition writes everything buffered (:meth:`flush`)."""
        self.pending.append(
            f'{{"t":{t0_ns},"ns":{dt_ns},"verb":{self._verb_json},"kind":{_q(kind)},"name":{_q(name)},'
            + ('"ok":true}\n' if err is None else f'"ok":false,"error":{_q(str(err))}}}\n')
        )
        if kind == "transition" or len(self.pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Append the buffered entries to the journal file in one write(2) (kept buffered while
        the state directory does not exist yet). Never raises: a journal that cannot be written
        (the container was deleted under us) must not fail the operation it records."""
        if self.path is None or not self.pending:
            return
        data = "".join(self.pending).encode()
        self.pending = []
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)


def read(state_dir: str) -> list[dict]:
    """Return the journal's entries in file order as dicts (``[]`` when there is no journal).
    A line that does not parse (a torn tail after a crash) is skipped."""
    import json

    try:
        with open(os.path.join(state_dir, JOURNAL), "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def timeline(entries: list[dict]) -> list[dict]:
    """Return the entries of a journal (in file order, as :func:`read` gives them) in lifecycle
    order: each transition, then its kernel actions in the order they ran, each action followed
    by the init steps reported while it ran (as explain mode prints them).

    The file holds an entry when it ended: init steps before the action that was waiting for
    them, actions before their transition. Within one container the operations that write are
    serialised by its lock, so this file order is exactly the nesting. An init step may have
    begun before the action it is listed under (the init runs ahead of the runtime): its ``t``
    tells. Entries left without a transition (a process killed mid-operation) come last, in
    the same nesting.
    """
    out: list[dict] = []
    steps: list[dict] = []
    actions: list[dict] = []
    for e in entries:
        kind = e.get("kind")
        if kind == "step":
            steps.append(e)
        elif kind == "action":
            actions.append(e)
            actions.extend(steps)
            steps = []
        else:  # a transition closes everything recorded since the previous one
            out.append(e)
            out.extend(actions)
            out.extend(steps)
            actions, steps = [], []
    return out + actions + steps
