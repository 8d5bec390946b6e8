"""``nk-runtime exec``, the runtime's side: build the process from ``--process`` JSON or flags,
fork a child that joins the container (cgroups, then every namespace of its init), and learn
whether its ``execve`` succeeded (runtime-spec runtime.md does not define exec; this follows runc).

The spawned process is a child of the runtime (a subreaper): a foreground exec waits for it
and returns its status; ``--detach`` leaves it to the runtime's own subreaper (the engine).
"""

from __future__ import annotations

import os

from nano_sandbox import errors
from nano_sandbox.linux import syscalls as sc

#: Order in which an exec joins the init's namespaces: user first (it grants the rights to join
#: the others), mount last among those that change what paths mean.
JOIN_ORDER = ("user", "cgroup", "ipc", "uts", "network", "pid", "time", "mount")


def namespaces_to_join(init_pid: int) -> list[tuple[str, str]]:
    """``[(oci type, path)]`` of the init's namespaces that differ from the runtime's own."""
    out = []
    for t in JOIN_ORDER:
        name = sc.NAMESPACES[t][1]
        theirs = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
        except FileNotFoundError:
            continue
        out.append((t, theirs))
    return out


def process_from_options(o, config_process):
    """The OCI ``process`` an exec runs: ``--process`` JSON if given, else the container's own
    process as a template (env, user, capabilities, rlimits, noNewPrivileges, labels) with the
    command line's args and flags on top, as runc does.

    Raises:
        errors.ConfigError: the ``--process`` document is invalid (names its path).
        errors.InvalidArgument: bad ``--user``/``--cap``/``--env`` values.
    """
    import msgspec

    from nano_sandbox import spec as specmod
    from nano_sandbox.spec import config as C

    if o.process:
        try:
            with open(o.process, "rb") if o.process != "-" else os.fdopen(os.dup(0), "rb") as f:
                data = f.read()
        except OSError as e:
            raise errors.InvalidArgument(f"--process {o.process}: {e.strerror}") from e
        proc = specmod.decode_process(data, source=os.path.basename(o.process) if o.process != "-" else "process.json")
    else:
        if not o.args:
            raise errors.InvalidArgument("exec: no command given (ARGS... or --process FILE)")
        base = config_process if config_process is not None else C.Process(args=["sh"], cwd="/")
        proc = msgspec.structs.replace(base, args=list(o.args), terminal=bool(o.tty))
    if o.cwd:
        proc = msgspec.structs.replace(proc, cwd=o.cwd)
    if o.env:
        for e in o.env:
            if "=" not in e or e.startswith("="):
                raise errors.InvalidArgument(f"--env {e!r}: expected KEY=VALUE")
        proc = msgspec.structs.replace(proc, env=list(proc.env or []) + list(o.env))
    if o.user:
        uid_s, _, gid_s = o.user.partition(":")
        try:
            uid, gid = _id_value(uid_s), _id_value(gid_s) if gid_s else 0
        except ValueError:
            raise errors.InvalidArgument(f"--user {o.user!r}: expected UID[:GID], numbers from 0 to 4294967294") from None
        user = msgspec.structs.replace(proc.user, uid=uid, gid=gid) if proc.user is not None else C.User(uid=uid, gid=gid)
        proc = msgspec.structs.replace(proc, user=user)
    for g in o.additional_gids or []:
        if not 0 <= g <= 4294967294:
            raise errors.InvalidArgument(f"--additional-gids {g}: expected a number from 0 to 4294967294")
    if o.additional_gids:
        user = proc.user or C.User(uid=0, gid=0)
        proc = msgspec.structs.replace(proc, user=msgspec.structs.replace(user, additional_gids=list(user.additional_gids or []) + list(o.additional_gids)))
    if o.caps:
        caps = proc.capabilities or C.LinuxCapabilities()
        add = [c if c.startswith("CAP_") else "CAP_" + c.upper() for c in o.caps]
        def plus(lst):
            return list(dict.fromkeys(list(lst or []) + add))
        caps = msgspec.structs.replace(caps, bounding=plus(caps.bounding), effective=plus(caps.effective),
                                       permitted=plus(caps.permitted), ambient=plus(caps.ambient) if caps.ambient else caps.ambient)
        proc = msgspec.structs.replace(proc, capabilities=caps)
    if o.no_new_privs:
        proc = msgspec.structs.replace(proc, no_new_privileges=True)
    if o.tty:
        proc = msgspec.structs.replace(proc, terminal=True)
    if o.apparmor:
        proc = msgspec.structs.replace(proc, apparmor_profile=o.apparmor)
    if o.process_label:
        proc = msgspec.structs.replace(proc, selinux_label=o.process_label)
    return proc


def _id_value(text: str) -> int:
    """A uid or gid from the command line: 0 to 4294967294 ((uid_t)-1 means "unchanged")."""
    n = int(text)
    if not text.strip().isdigit() or not 0 <= n <= 4294967294:
        raise ValueError(text)
    return n


def run_exec(c) -> None:
    """The ``spawn_exec`` action: start the process in the container; on success
    ``c.scratch["exec_pid"]`` holds its host pid (and ``exec_master`` the pty master when the
    runtime itself must proxy the terminal).

    Raises:
        errors.NkError: the process could not be started (names the step; a missing binary says
            ``executable file not found in $PATH``).
    """
    import socket

    from nano_sandbox import spec as specmod
    from nano_sandbox.process import messages as M
    from nano_sandbox.process import plan as planmod
    from nano_sandbox.process.spawn import InitError, InitHandle
    from nano_sandbox.spec import validate

    o = c.opts
    config = specmod.decode_config(bytes(c.state.config))
    proc = process_from_options(o, config.process)
    problems = validate.process_problems(proc, "process", "process.json" if o.process else "exec")
    if problems:
        raise problems[0]
    host = validate.Host.probe()
    if proc.apparmor_profile and "apparmor" not in host.lsms:
        raise errors.ConfigError("process.apparmorProfile", "AppArmor is not enabled on this host", source="exec")
    if proc.selinux_label and "selinux" not in host.lsms:
        raise errors.ConfigError("process.selinuxLabel", "SELinux is not enabled on this host", source="exec")
    warnings: list[str] = []
    xp = planmod.ExecPlan()
    xp.cid = c.id
    xp.init_pid = c.state.pid
    xp.explain = c.narrator is not None
    xp.join = namespaces_to_join(c.state.pid)
    p = planmod.process_plan(proc, warnings)
    p.preserve_fds = o.preserve_fds or 0
    if config.linux is not None and config.linux.seccomp is not None:
        p.seccomp_bpf, p.seccomp_flags = planmod.build_seccomp(config.linux.seccomp)
    xp.preserve_fds = p.preserve_fds
    xp.process = p
    for w in dict.fromkeys(warnings):
        c.log.warning(w)

    console_fd = None
    receiver = None
    if p.terminal:
        if o.console_socket:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(o.console_socket)
            except OSError as e:
                raise errors.NkError(f"--console-socket {o.console_socket}: {e.strerror}") from e
            console_fd = s.detach()
        elif o.detach:
            raise errors.InvalidArgument("exec: a terminal with --detach needs --console-socket")
        else:
            receiver, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console_fd = theirs.detach()

    h = InitHandle("exec")
    if c.narrator is not None:
        narrator = c.narrator
        h.on_step = lambda step: narrator.substep(step, "exec process")
    from nano_sandbox.cgroups.manager import Manager
    try:
        h.spawn(xp, console_fd=console_fd, entry="exec")
    finally:
        if console_fd is not None:
            os.close(console_fd)
    try:
        Manager(c.state.cgroup_paths, c.state.cgroup_created).add(h.stage1_pid)
        h.send(M.Go())
        msg = h.recv()
        if not isinstance(msg, M.Pid):
            raise InitError(f"exec: protocol error: unexpected {type(msg).__name__}")
        h.pid = msg.pid
        os.waitpid(h.stage1_pid, 0)
        h.stage1_pid = 0
        h.send(M.Go())
        h.wait_exec()
    except BaseException:
        h.kill()
        raise
    finally:
        h.close()
    c.scratch["exec_pid"] = h.pid
    if receiver is not None:
        from nano_sandbox.process.tty import recv_fd

        c.scratch["exec_master"] = recv_fd(receiver)
        receiver.close()


EXIT_RUNTIME_FAILURE = 255
