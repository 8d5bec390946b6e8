"""The operations behind the CLI verbs: lock, load, derive, fire a trigger, save.

Every operation that can change a container takes its file lock, loads its state, derives the
status from kernel facts (firing ``process_exited`` when the facts say the init is gone), then
fires the verb's trigger on the machine. Read-only operations (``state``, ``list``) take no
lock: state.json is replaced atomically, so a reader always sees a whole file.
"""

from __future__ import annotations

import os
from typing import Any

from nano_sandbox import errors, log
from nano_sandbox.lifecycle.machine import Container, attach, fire
from nano_sandbox.state import store


class Options:
    """A plain bag of per-operation options (``pid_file``, ``signal``, ``force``, ...); unset
    names read as None."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __getattr__(self, name: str) -> Any:
        return None


def _instrument(c: Container, g, state_dir: str | None) -> None:
    c.log = log.get()
    if g is not None and getattr(g, "explain", False):
        narrator = getattr(g, "narrator", None)
        if narrator is None:
            from nano_sandbox.explain.narrate import Narrator

            narrator = g.narrator = Narrator(fmt=g.log_format)
        c.narrator = narrator
    from nano_sandbox.explain.journal import Journal

    c.journal = Journal(state_dir, getattr(g, "verb", "") or "")


def _attach(c: Container, status: str) -> Container:
    attach(c, status)
    c.scratch["previous_status"] = status
    return c


def load_locked(g, root: str, cid: str, opts: Options | None = None) -> Container:
    """Load a container while its lock is held, derive its status and fire ``process_exited``
    when the kernel says the init is gone. Returns the attached model.

    Raises:
        errors.ContainerNotFound: no such container.
    """
    state = store.load(root, cid)
    derived = store.derive_status(root, state)
    if state.status == "creating" and derived == "creating":
        derived = "stopped"  # we hold the lock, so the create that made this is gone
    log.get().debug(f"container {cid}: state.json says {state.status}, the kernel says {derived} (init pid {state.pid})")
    c = Container(cid, root, state, opts or Options())
    _instrument(c, g, store.state_dir(root, cid))
    if derived == "stopped" and state.status != "stopped":
        _attach(c, state.status)
        fire(c, "process_exited")
        c.scratch["previous_status"] = "stopped"
        return c
    return _attach(c, derived if derived in ("created", "running", "paused", "stopped") else state.status)


class Locked:
    """Context manager: hold a container's lock for one operation. ``gone()`` marks the
    container as deleted: the lock file is removed before the lock is released."""

    def __init__(self, root: str, cid: str) -> None:
        store.validate_id(cid)
        self.lock = store.container_lock(root, cid)
        self._gone = False

    def gone(self) -> None:
        self._gone = True

    def __enter__(self):
        self.lock.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._gone or (exc_type is not None and issubclass(exc_type, errors.ContainerNotFound)):
            self.lock.remove()  # no container of that id (any more): no lock file either
        self.lock.release()


# ==================================================================================================
def create(g, cid: str, opts: Options) -> Container:
    """``nk-runtime create``: create a container from ``opts.bundle``; on any failure undo
    everything (``abort``) and re-raise.

    Raises:
        errors.ContainerExists, errors.ConfigError, errors.ConfigProblems, errors.NkError.
    """
    root = g.root
    with Locked(root, cid) as held:
        if os.path.exists(store.state_dir(root, cid)):
            raise errors.ContainerExists(cid)
        c = Container(cid, root, None, opts)
        _instrument(c, g, None)
        _attach(c, "creating")
        try:
            fire(c, "create")
        except BaseException as e:
            if not isinstance(e, errors.ContainerExists):
                held.gone()
            try:
                fire(c, "abort")
            except Exception as cleanup:  # noqa: BLE001 - report, but the first error wins
                log.get().warning(f"cleanup after failed create: {cleanup}")
            if isinstance(e, KeyboardInterrupt):
                raise errors.NkError("create interrupted") from e
            raise
        return c


def start(g, cid: str, opts: Options | None = None) -> Container:
    """``nk-runtime start``: run the user process of a created container."""
    with Locked(g.root, cid):
        c = load_locked(g, g.root, cid, opts)
        fire(c, "start")
        return c


def kill(g, cid: str, sig: int, all_: bool = False) -> None:
    """``nk-runtime kill``: signal the init (or every process with ``all_``)."""
    with Locked(g.root, cid):
        c = load_locked(g, g.root, cid, Options(signal=sig, all=all_))
        if c.status == "stopped":
            raise errors.NkError(f'cannot kill container "{cid}": container not running')
        fire(c, "kill")


def delete(g, cid: str, force: bool = False) -> None:
    """``nk-runtime delete``: remove a stopped container; ``force`` kills a live one first.
    ``delete --force`` of an unknown id succeeds (engines' cleanup relies on it)."""
    try:
        store.validate_id(cid)
    except errors.InvalidArgument:
        raise
    with Locked(g.root, cid) as held:
        try:
            c = load_locked(g, g.root, cid, Options(force=force))
        except errors.ContainerNotFound:
            held.gone()
            if force:
                _remove_broken(g.root, cid)  # a state dir without state.json: a create that died
                return
            raise
        except errors.HostError as e:  # state.json unreadable or corrupt
            if not force:
                raise
            log.get().warning(f"{e}: removing the state directory; its cgroups and processes, if any, are not known")
            _remove_broken(g.root, cid)
            held.gone()
            return
        if c.status == "stopped":
            fire(c, "delete")
        elif force:
            fire(c, "force_delete")
        else:
            raise errors.InvalidState("delete", cid, c.status, ["stopped"])
        held.gone()


def exec_(g, cid: str, opts: Options) -> tuple[int, int | None]:
    """``nk-runtime exec``: start a process in the container. The lock is held only while the
    process is being started; returns ``(host pid, pty master fd or None)``."""
    with Locked(g.root, cid):
        c = load_locked(g, g.root, cid, opts)
        fire(c, "exec")
        return c.scratch["exec_pid"], c.scratch.get("exec_master")


def _remove_broken(root: str, cid: str) -> None:
    import shutil

    d = store.state_dir(root, cid)
    if os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)


def pause(g, cid: str) -> None:
    """``nk-runtime pause``: freeze the container."""
    with Locked(g.root, cid):
        fire(load_locked(g, g.root, cid), "pause")


def resume(g, cid: str) -> None:
    """``nk-runtime resume``: thaw the container."""
    with Locked(g.root, cid):
        fire(load_locked(g, g.root, cid), "resume")


def update(g, cid: str, resources) -> None:
    """``nk-runtime update``: apply new resource limits."""
    with Locked(g.root, cid):
        c = load_locked(g, g.root, cid, Options(resources=resources))
        fire(c, "update")


def state(root: str, cid: str) -> store.OCIState:
    """``nk-runtime state``: the OCI state with the derived status (no lock; see module doc)."""
    store.validate_id(cid)
    st = store.load(root, cid)
    return store.oci_state(st, store.derive_status(root, st))


def list_all(root: str) -> list[tuple[store.State, str]]:
    """``nk-runtime list``: every container with its derived status."""
    out = []
    for cid in store.list_ids(root):
        try:
            st = store.load(root, cid)
        except errors.NkError:
            continue
        out.append((st, store.derive_status(root, st)))
    return out
