"""The kernel actions named in ``statecharts/lifecycle.toml``, bound to Python callables.

Each action takes the :class:`~nano_sandbox.lifecycle.machine.Container` model and does one
step of a transition. They run only as ``before``/``after`` callbacks of the machine (see
:mod:`~nano_sandbox.lifecycle.machine`); ``ACTIONS`` maps every action name of the chart to its
callable and ``GUARDS`` every guard name (a test checks both directions).

Modules are imported inside the actions, so each verb loads only what its transitions use.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

from nano_sandbox import errors
from nano_sandbox.linux import syscalls as sc


# ==================================================================================================
# create
# ==================================================================================================
def validate_bundle(c) -> None:
    """Decode config.json, check it against the spec and the host, and compute the init plan.

    Raises:
        errors.ConfigError / errors.ConfigProblems: naming every JSON path at fault.
    """
    from nano_sandbox import spec as specmod
    from nano_sandbox.cgroups.layout import detect
    from nano_sandbox.cgroups.manager import Manager
    from nano_sandbox.process import plan as planmod
    from nano_sandbox.spec import validate
    from nano_sandbox.state import store

    o = c.opts
    bundle = os.path.abspath(o.bundle)
    path = os.path.join(bundle, "config.json")
    sc.record(f'open("{path}", O_RDONLY)')
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise errors.ConfigError("", f"no config.json in bundle {bundle}", source="config.json") from None
    except OSError as e:
        raise errors.ConfigError("", f"cannot read {path}: {e.strerror}") from e
    spec = specmod.decode_config(raw)
    layout = detect()
    host = validate.Host.probe()
    problems = validate.check(spec, bundle, host)
    if problems:
        raise errors.ConfigProblems(problems)
    if spec.process is not None and spec.process.terminal and not o.console_socket and not o.terminal_proxy:
        raise errors.ConfigError("process.terminal", "is true but no --console-socket was given to receive the terminal")
    cg = Manager.for_container(c.id, spec.linux.cgroups_path if spec.linux is not None else None, layout)
    plan = planmod.build(
        spec, cid=c.id, bundle=bundle, state_dir=store.state_dir(c.root, c.id), cgroup_paths=cg.paths, layout=layout,
        no_pivot=o.no_pivot, no_new_keyring=o.no_new_keyring, preserve_fds=o.preserve_fds, explain=c.narrator is not None,
    )
    plan.console_socket = o.console_socket
    c.log.debug(f"create {c.id}: bundle {bundle}, rootfs {plan.rootfs}, cgroups {sorted(set(cg.paths.values()))}, "
                f"new namespaces {plan.new_flags:#x}{' + user' if plan.new_user else ''}, {len(plan.mounts)} mounts")
    for w in dict.fromkeys(validate.warnings(spec, host) + plan.warnings):
        c.log.warning(w)
    c.scratch.update(spec=spec, raw=raw, plan=plan, cgroups=cg, bundle=bundle)


def make_state_dir(c) -> None:
    """mkdir ``<root>/<id>`` (0711), mkfifo ``exec.fifo`` (0622), write state.json (creating).

    Raises:
        errors.ContainerExists: the directory exists already.
    """
    import msgspec

    from nano_sandbox.state import store

    d = store.state_dir(c.root, c.id)
    try:
        os.makedirs(c.root, mode=0o711, exist_ok=True)
        sc.record(f'mkdir("{d}", 0711)')
        os.mkdir(d, 0o711)
    except FileExistsError:
        raise errors.ContainerExists(c.id) from None
    except OSError as e:
        raise errors.HostError(f"cannot create state directory {d}: {e.strerror}") from e
    c.scratch["made_state_dir"] = True
    fifo = os.path.join(d, store.FIFO_NAME)
    sc.record(f'mkfifo("{fifo}", 0622)')
    old = os.umask(0)
    try:
        os.mkfifo(fifo, 0o622)
    finally:
        os.umask(old)
    spec = c.scratch["spec"]
    c.state = store.State(
        id=c.id,
        status=c.status,
        bundle=c.scratch["bundle"],
        annotations=dict(spec.annotations or {}),
        created=store.now_rfc3339(),
        rootfs=c.scratch["plan"].rootfs,
        config=msgspec.Raw(c.scratch["raw"]),
    )
    if c.journal is not None:
        c.journal.attach(d)
    store.save(c.root, c.state)


def spawn_init(c) -> None:
    """Fork stage 1 of the container init (see :mod:`nano_sandbox.process.init`)."""
    from nano_sandbox.process.spawn import InitHandle

    h = InitHandle("create")
    if c.narrator is not None:
        h.on_step = c.narrator.substep
    if c.journal is not None:
        prev = h.on_step

        def on_step(step, prev=prev):
            if prev is not None:
                prev(step)
            c.journal.entry("step", step.name, step.t0, step.ns, None)

        h.on_step = on_step
    c.scratch["init"] = h
    plan = c.scratch["plan"]
    console_fd = None
    if plan.process is not None and plan.process.terminal:
        import socket

        if c.opts.console_socket:
            # Connected here, in the runtime's mount namespace: the init cannot reach the path.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sc.record(f'connect(AF_UNIX, "{c.opts.console_socket}")')
            try:
                s.connect(c.opts.console_socket)
            except OSError as e:
                s.close()
                raise errors.NkError(f"--console-socket {c.opts.console_socket}: {e.strerror}") from e
            console_fd = s.detach()
        else:  # `run` in the foreground: the runtime receives the pty master itself
            receiver, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            c.scratch["console_receiver"] = receiver
            console_fd = theirs.detach()
    try:
        h.spawn(plan, console_fd=console_fd)
    finally:
        if console_fd is not None:
            os.close(console_fd)


def join_cgroup(c) -> None:
    """Create the container's cgroups and move stage 1 of the init into them (the limits come
    later, :func:`set_cgroup_limits`).

    The directories are recorded in state.json *before* they are made: if this runtime dies
    half way, ``delete --force`` still finds and removes them and whatever runs there.

    Raises:
        errors.HostError: the container's cgroup already holds processes (another container's:
            two containers must not share one), or a cgroup cannot be made.
    """
    from nano_sandbox.state import store

    cg = c.scratch["cgroups"]
    busy = cg.busy_leaves()
    if busy:
        raise errors.HostError(
            f"linux.cgroupsPath: the cgroup {busy[0]} already holds processes (another container's?): refusing to share it"
        )
    c.scratch["cgroups_touched"] = True
    c.state.cgroup_paths = dict(cg.paths)
    c.state.cgroup_created = cg.planned()
    store.save(c.root, c.state)
    try:
        cg.create()
    finally:
        c.state.cgroup_created = list(dict.fromkeys(cg.created))
        store.save(c.root, c.state)
    cg.add(c.scratch["init"].stage1_pid)


def set_cgroup_limits(c) -> None:
    """Write ``linux.resources`` into the container's cgroups once the init is ready, as runc
    does: a pids limit of 1 would otherwise stop the init from forking, and the device rules
    (deny-all plus the default devices) are written even when the config has no resources."""
    from nano_sandbox.spec.config import LinuxResources

    spec = c.scratch["spec"]
    res = spec.linux.resources if spec.linux is not None and spec.linux.resources is not None else LinuxResources()
    c.scratch["cgroups"].apply(res)


def enter_namespaces(c) -> None:
    """Let the init enter its namespaces (writing uid/gid maps for a new user namespace) and
    record the pid of the container's init and its start time."""
    from nano_sandbox.process.spawn import write_id_maps
    from nano_sandbox.state import store

    spec = c.scratch["spec"]
    linux = spec.linux

    def maps(pid: int) -> None:
        write_id_maps(pid, linux.uid_mappings, linux.gid_mappings)

    pid = c.scratch["init"].enter_namespaces(maps)
    st = store.proc_stat(pid)
    c.state.pid = pid
    c.state.init_start_time = st[1] if st else 0
    store.save(c.root, c.state)


def prepare_rootfs(c) -> None:
    """Wait while the init mounts the root filesystem (its steps are reported as they finish)."""
    from nano_sandbox.process import messages as M

    c.scratch["init"].expect(M.RootfsReady)


def _state_json(c, status: str, with_pid: bool = True) -> bytes:
    from nano_sandbox.state import store

    st = c.state
    doc = store.OCIState(oci_version=st.oci_version, id=st.id, status=status, bundle=st.bundle,
                         annotations=st.annotations)
    if with_pid and st.pid:
        doc.pid = st.pid
    import msgspec

    return msgspec.json.encode(doc)


def _hooks(c, kind: str):
    from nano_sandbox.process.plan import hooks_of

    spec = c.scratch.get("spec") or _config(c)
    return hooks_of(spec, kind)


def run_create_runtime_hooks(c) -> None:
    """Run the prestart and createRuntime hooks (runtime namespace), then let the init go on.

    The create-phase hooks see status ``created``: they run after step 2 of the spec's lifecycle
    (runtime.md "Lifecycle"), when the environment is created.
    """
    from nano_sandbox.process import messages as M
    from nano_sandbox.process.hooks import run_hook

    state_json = _state_json(c, "created")
    for kind in ("prestart", "createRuntime"):
        for h in _hooks(c, kind):
            sc.record(f'fork(); execve("{h.path}", {h.args!r}, ...) <- state JSON on stdin')
            run_hook(h, state_json)
    c.scratch["init"].send(M.HooksDone(state_json=state_json))


def enter_rootfs(c) -> None:
    """Wait until the init has pivoted into the rootfs and reports Ready (blocked on the fifo)."""
    from nano_sandbox.process import messages as M

    h = c.scratch["init"]
    h.expect(M.Ready)
    h.close()


def write_pid_file(c) -> None:
    """Write the init's pid to ``--pid-file``: decimal, no newline (containerd uses Atoi),
    written to a temporary file and renamed, as runc does."""
    path = c.opts.pid_file
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    sc.record(f'write("{path}", "{c.state.pid}")')
    try:
        with open(tmp, "w") as f:
            f.write(str(c.state.pid))
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise errors.HostError(f"--pid-file {path}: {e.strerror}") from e
    c.scratch["pid_file_written"] = path


def save_state(c) -> None:
    """Persist the machine's status (and the record) atomically."""
    from nano_sandbox.state import store

    if c.state is None:
        return
    prev = c.scratch.get("previous_status")
    if prev and prev != c.status:
        c.state.previous_status = prev
    c.state.status = c.status
    store.save(c.root, c.state)


# ---- abort (undo a failed create) -------------------------------------------------------------------
def kill_init(c) -> None:
    """SIGKILL and reap the half-built init, if one was forked."""
    h = c.scratch.get("init")
    if h is not None:
        h.kill()
    elif c.state is not None and c.state.pid:
        try:
            os.kill(c.state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    path = c.scratch.get("pid_file_written")
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def remove_cgroup(c) -> None:
    """Remove the cgroup directories this runtime created for the container."""
    from nano_sandbox.cgroups.manager import Manager

    cg = c.scratch.get("cgroups")
    if cg is None:
        if c.state is None or not c.state.cgroup_paths:
            return
        cg = Manager(c.state.cgroup_paths, c.state.cgroup_created)
    elif c.status == "creating" and not c.scratch.get("cgroups_touched"):
        return  # create failed before making any cgroup
    if cg.owns_leaves():  # never kill in a cgroup the container only joined
        deadline = time.monotonic() + 5
        while cg.pids() and time.monotonic() < deadline:
            cg.kill_all(signal.SIGKILL)
            time.sleep(0.002)
    cg.destroy()


def remove_state_dir(c) -> None:
    """Remove ``<root>/<id>`` (only when this operation made it, or on delete)."""
    import shutil

    if c.status == "creating" and not c.scratch.get("made_state_dir"):
        return
    from nano_sandbox.state import store

    d = store.state_dir(c.root, c.id)
    sc.record(f'unlink and rmdir every entry of "{d}", then rmdir("{d}")')
    shutil.rmtree(d, ignore_errors=True)
    if c.journal is not None:
        c.journal.detach()


# ==================================================================================================
# start
# ==================================================================================================
def _config(c):
    spec = c.scratch.get("spec")
    if spec is None:
        from nano_sandbox import spec as specmod

        spec = specmod.decode_config(bytes(c.state.config))
        c.scratch["spec"] = spec
    return spec


def has_process(c) -> bool:
    """Guard of ``start``: the config has a ``process``."""
    return _config(c).process is not None


def release_exec_fifo(c) -> None:
    """Open the exec fifo for reading so the init execs; read until EOF (exec happened) or an
    error message (lookup or hook failure), then remove the fifo.

    Raises:
        errors.NkError: the init reported an error (``exec: "x": executable file not found in
            $PATH``) or died before exec.
    """
    import select

    from nano_sandbox.state import store

    fifo = os.path.join(store.state_dir(c.root, c.id), store.FIFO_NAME)
    sc.record(f'open("{fifo}", O_RDONLY|O_NONBLOCK)')
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.InvalidState("start", c.id, "running", ["created"]) from None
    data = b""
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        while True:
            if not p.poll(100):
                if not store.init_alive(c.state):
                    raise errors.NkError(f'cannot start container "{c.id}": its init process exited before start')
                continue
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass
    sc.record("read() = EOF: execve happened")
    if data:
        raise errors.NkError(data.decode(errors="replace"))


def run_poststart_hooks(c) -> None:
    """Run the poststart hooks; a failure is a warning (runtime-spec: it MUST NOT fail start)."""
    from nano_sandbox.process.hooks import HookError, run_hook

    hooks = _hooks(c, "poststart")
    if not hooks:
        return
    state_json = _state_json(c, "running")
    for h in hooks:
        try:
            run_hook(h, state_json)
        except HookError as e:
            c.log.warning(str(e))


# ==================================================================================================
# kill, pause, resume, update
# ==================================================================================================
def _manager(c):
    from nano_sandbox.cgroups.manager import Manager

    cg = c.scratch.get("cgroups")
    if cg is None:
        cg = Manager(c.state.cgroup_paths, c.state.cgroup_created)
        c.scratch["cgroups"] = cg
    return cg


def send_signal(c) -> None:
    """kill(2) the init (checked against its recorded start time through a pidfd) or, with
    ``--all``, every process of the cgroup."""
    sig = c.opts.signal
    if c.opts.all:
        sc.record(f"kill(<each pid in the cgroup>, {sig})")
        _manager(c).kill_all(sig)
        if sig == signal.SIGKILL and c.status == "paused":
            _manager(c).thaw()
        return
    from nano_sandbox.state import store

    try:
        pidfd = os.pidfd_open(c.state.pid)
    except ProcessLookupError:
        raise errors.NkError(f'cannot kill container "{c.id}": container not running') from None
    try:
        if not store.init_alive(c.state):
            raise errors.NkError(f'cannot kill container "{c.id}": container not running')
        sc.record(f"pidfd_send_signal(pidfd({c.state.pid}), {sig})")
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise errors.NkError(f'cannot kill container "{c.id}": container not running') from None
    finally:
        os.close(pidfd)
    if sig == signal.SIGKILL and c.status == "paused":
        _manager(c).thaw()


def spawn_exec(c) -> None:
    """Run a new process inside the container (``nk-runtime exec``)."""
    from nano_sandbox.process.exec_ import run_exec

    run_exec(c)


def apply_resources(c) -> None:
    """Write new limits (``nk-runtime update``, ``c.opts.resources``: a ``LinuxResources`` holding
    only the changes) into the container's cgroup files, then store the merged resources in the
    saved config (state.json ``config``, written by ``save_state``) so later updates and
    ``events --stats`` see them. Only ``linux.resources`` of the stored config changes.

    Raises:
        errors.HostError: a limit could not be set (names the limit and the cgroup file); the
            stored config is then left as it was (files written before the failing one keep their
            new values, as with runc).
    """
    import msgspec

    from nano_sandbox import spec as specmod
    from nano_sandbox.cgroups.resources import merge

    spec = _config(c)
    current = spec.linux.resources if spec.linux is not None else None
    _manager(c).apply(c.opts.resources, update=True, current=current)
    merged = merge(current, c.opts.resources)
    doc = msgspec.json.decode(bytes(c.state.config))
    doc.setdefault("linux", {})["resources"] = msgspec.json.decode(specmod.encode(merged))
    c.state.config = msgspec.Raw(msgspec.json.encode(doc))
    if spec.linux is not None:
        spec.linux.resources = merged


def freeze_cgroup(c) -> None:
    """Freeze every process of the container (v1 ``freezer.state`` FROZEN, v2 ``cgroup.freeze`` 1)
    and wait until the kernel reports it frozen.

    Raises:
        errors.HostError: naming the freezer file.
    """
    _manager(c).freeze()


def thaw_cgroup(c) -> None:
    """Thaw the container (v1 ``freezer.state`` THAWED, v2 ``cgroup.freeze`` 0).

    Raises:
        errors.HostError: naming the freezer file.
    """
    _manager(c).thaw()


def record_exit(c) -> None:
    """Note when the runtime saw the init gone."""
    from nano_sandbox.state import store

    c.state.exited_at = store.now_rfc3339()


# ==================================================================================================
# delete
# ==================================================================================================
def _wait_cgroup_empty(c, timeout: float = 10.0) -> None:
    cg = _manager(c)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cg.pids():
            return
        cg.kill_all(signal.SIGKILL)
        time.sleep(0.002)


def kill_remaining(c) -> None:
    """SIGKILL whatever is left in the cgroup of a stopped container (only in a cgroup this
    runtime created: a cgroup the container merely joined may hold others' processes)."""
    cg = _manager(c)
    if cg.owns_leaves() and cg.pids():
        sc.record("kill(<each pid left in the cgroup>, SIGKILL)")
        cg.kill_all(signal.SIGKILL)
        if cg.frozen():
            cg.thaw()
        _wait_cgroup_empty(c)


def kill_all(c) -> None:
    """SIGKILL every process of the container (thawing it if frozen) and wait until they are gone."""
    from nano_sandbox.state import store

    cg = _manager(c)
    sc.record("kill(<init and each pid in the cgroup>, SIGKILL)")
    if store.init_alive(c.state):
        try:
            os.kill(c.state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if cg.owns_leaves():  # a joined cgroup may hold others' processes: only the init then
        cg.kill_all(signal.SIGKILL)
    if cg.frozen():
        cg.thaw()
    if cg.owns_leaves():
        _wait_cgroup_empty(c)
    deadline = time.monotonic() + 10
    while store.init_alive(c.state) and time.monotonic() < deadline:
        time.sleep(0.002)


def run_poststop_hooks(c) -> None:
    """Run the poststop hooks; each failure is a warning and the others still run."""
    from nano_sandbox.process.hooks import HookError, run_hook

    hooks = _hooks(c, "poststop")
    if not hooks:
        return
    state_json = _state_json(c, "stopped", with_pid=False)
    for h in hooks:
        try:
            run_hook(h, state_json)
        except HookError as e:
            c.log.warning(str(e))


ACTIONS: dict[str, Callable] = {
    f.__name__: f
    for f in (
        validate_bundle, make_state_dir, spawn_init, join_cgroup, set_cgroup_limits, enter_namespaces, prepare_rootfs,
        run_create_runtime_hooks, enter_rootfs, write_pid_file, save_state, kill_init, remove_cgroup,
        remove_state_dir, release_exec_fifo, run_poststart_hooks, send_signal, spawn_exec,
        apply_resources, freeze_cgroup, thaw_cgroup, record_exit, kill_remaining, kill_all,
        run_poststop_hooks,
    )
}

GUARDS: dict[str, Callable] = {"has_process": has_process}
