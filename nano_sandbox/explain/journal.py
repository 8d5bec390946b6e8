"""The trace journal: ``<root>/<id>/journal``, one JSON line per transition, kernel action and
init step, with its monotonic start time (ns, CLOCK_MONOTONIC, comparable across processes),
duration (ns) and outcome. ``nk-runtime trace ID`` prints it.

Entries made before the state directory exists (create's first action) are buffered and
written when it appears; each write is one ``O_APPEND`` write(2) of one line, so concurrent
writers never interleave within a line.
"""

from __future__ import annotations

import os

JOURNAL = "journal"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Journal:
    """Appends entries to a container's journal.

    Args:
        state_dir: the container's state directory, or None until it exists (create).
        verb: the CLI verb of this operation (recorded in each entry).
    """

    def __init__(self, state_dir: str | None, verb: str) -> None:
        self.verb = verb
        self.path = os.path.join(state_dir, JOURNAL) if state_dir else None
        self.pending: list[bytes] = []

    def attach(self, state_dir: str) -> None:
        """The state directory now exists: write what was buffered."""
        self.path = os.path.join(state_dir, JOURNAL)
        if self.pending:
            self._write(b"".join(self.pending))
            self.pending = []

    def detach(self) -> None:
        """The state directory is gone (delete): stop writing."""
        self.path = None
        self.pending = []

    def entry(self, kind: str, name: str, t0_ns: int, dt_ns: int, err: BaseException | None) -> None:
        """Record one entry: ``kind`` is ``transition``, ``action`` or ``step``."""
        line = (
            f'{{"t":{t0_ns},"ns":{dt_ns},"verb":{_q(self.verb)},"kind":{_q(kind)},"name":{_q(name)},'
            f'"ok":{"false" if err else "true"}'
            + (f',"error":{_q(str(err))}' if err else "")
            + "}\n"
        ).encode()
        if self.path is None:
            self.pending.append(line)
        else:
            self._write(line)

    def _write(self, data: bytes) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # the container was deleted under us: nothing to journal into
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read(state_dir: str) -> list[dict]:
    """Return the journal's entries (oldest first) as dicts."""
    import json

    try:
        with open(os.path.join(state_dir, JOURNAL)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
