"""The lifecycle fuzzer: a hypothesis ``RuleBasedStateMachine`` that drives a real runtime binary.

Each example creates up to :data:`MAX_IDS` containers (fixed ids, reused after ``delete``) and
runs random steps on them: ``create`` (configs from :func:`~nano_sandbox.fuzz.configs.container_specs`),
``start``, ``kill`` (TERM, KILL, HUP, INT, USR1, 0; with or without ``--all``), ``delete`` (with
or without ``--force``), ``pause``, ``resume``, ``exec`` (foreground with a known exit status, or
``--detach``), ``run`` and ``wait`` (let a process that ends by itself end, or just look).

:class:`Box` models one id. The model is the OCI lifecycle (runtime-spec ``runtime.md``,
"State", "Lifecycle" and "Operations", quoted in :data:`SPEC`) plus runc's conventions for what
the spec does not define (``paused``, ``exec``, ``delete --force``, exit statuses). A container
whose process may end on its own (or by a signal the fuzzer sent) is ``status`` *or* ``stopped``
until a ``state`` shows ``stopped``; after a SIGKILL the fuzzer polls (bounded) and then requires
``stopped``. Every step is followed by invariants on every id:

* ``state`` of a live id succeeds, is valid against ``state-schema.json`` (``paused`` allowed,
  a runtime-defined status), names the id and bundle, has a status the model allows and, while
  ``created``/``running``/``paused``, the same pid throughout, a live process;
* ``state`` of a deleted or never-created id fails;
* nothing of a deleted container is left: state directory, cgroup directories, processes, host
  mounts.

Any violation raises :class:`Violation`, whose message ends with a shell script that replays the
(shrunk) sequence with the same bundles (:class:`Trace`). Known deviations of a runtime can be
tolerated by name (:data:`DEVIATIONS`) so the fuzzer explores past them.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nano_sandbox.fuzz import (
    Result,
    Runtime,
    StateValidator,
    Workdir,
    base_config,
    cgroup_dirs_named,
    cgroup_dirs_of_pid,
    crash_marker,
    mounts_mentioning,
    process_alive,
)
from nano_sandbox.fuzz.configs import ContainerSpec, container_specs

MAX_IDS = 3
LIVE = ("created", "running", "paused")
#: How long a container may take to be seen stopped after SIGKILL, or after its process ends.
STOP_TIMEOUT = 15.0
#: How long processes of a deleted container may take to disappear (reaping is asynchronous).
GONE_TIMEOUT = 5.0

#: "0" sends nothing (kill(2)); "BOGUS" is no signal at all and must be refused.
SIGNALS = ("TERM", "KILL", "HUP", "INT", "USR1", "0", "BOGUS")

#: (argv, exit status it must have) for exec.
EXEC_COMMANDS = (
    (("true",), 0),
    (("sh", "-c", "exit 3"), 3),
    (("sh", "-c", "kill -9 $$"), 137),  # runc's convention: 128 + signal number
)

# --------------------------------------------------------------------------------------------------
# What each check stands on.

SPEC: dict[str, str] = {
    "create": 'runtime.md "Create": "This operation MUST create a new container." ... "Upon successful completion '
              'of this operation the status property of this container MUST be created" (runtime.md "State": created)',
    "create-exists": 'runtime.md "Create": "If the ID provided is not unique across all containers within the scope of '
                     'the runtime, or is not valid in any other way, the implementation MUST generate an error and a '
                     'new container MUST NOT be created."',
    "start": 'runtime.md "Start": "This operation MUST run the user-specified program as specified by process." '
             '(runtime.md "State": running = "the container process has executed the user-specified program but has '
             'not exited")',
    "start-not-created": 'runtime.md "Start": "Attempting to start a container that is not created MUST have no '
                         'effect on the container and MUST generate an error."',
    "kill": 'runtime.md "Kill": "This operation MUST send the specified signal to the process in the container."',
    "kill-bad-signal": 'runtime.md "Kill": "This operation MUST send the specified signal to the process in the '
                       'container." A name that is no signal cannot be sent: the operation must generate an error '
                       '(runtime.md "Errors")',
    "kill-not-live": 'runtime.md "Kill": "Attempting to send a signal to a container that is neither created nor '
                     'running MUST have no effect on the container and MUST generate an error."',
    "stopped-after-kill": 'runtime.md "State": stopped = "the container process has exited"; a SIGKILLed process '
                          'exits, so state MUST then say stopped',
    "stopped-after-exit": 'runtime.md "State": stopped = "the container process has exited" (Lifecycle step 7: "The '
                          'container process exits. This MAY happen due to erroring out, exiting, crashing or the '
                          'runtime\'s kill operation being invoked.")',
    "delete": 'runtime.md "Delete": "Deleting a container MUST delete the resources that were created during the '
              'create step."',
    "delete-not-stopped": 'runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no '
                          'effect on the container and MUST generate an error."',
    "delete-force": "runc convention (not in the spec): delete --force kills a live container and deletes it",
    "delete-force-unknown": "runc convention engines rely on (not in the spec): delete --force of an unknown id exits 0",
    "unknown-id": 'runtime.md "Query State"/"Start"/"Kill"/"Delete": operating on a container that does not exist '
                  'MUST generate an error ("Attempting to query a container that does not exist MUST generate an '
                  'error.")',
    "state": 'runtime.md "Query State": "This operation MUST return the state of a container as specified in the '
             'State section." (schema/state-schema.json; "paused" allowed: "Additional values MAY be defined by the '
             'runtime")',
    "state-model": 'runtime.md "State" status definitions (created / running / stopped) and runc\'s paused',
    "pid": 'runtime.md "State": "pid (int, REQUIRED when status is created or running on Linux) is the ID of the '
           'container process, as seen by the host."',
    "errors": 'runtime.md "Errors": "Unless otherwise stated, generating an error MUST leave the state of the '
              'environment as if the operation were never attempted"',
    "pause": "runc extension (not in the spec): pause of a running container freezes it and state says paused; "
             "pause of a stopped one fails",
    "resume": "runc extension (not in the spec): resume of a paused container thaws it and state says running; "
              "resume of a stopped one fails",
    "exec": "runc extension (not in the spec): exec runs a process in a created or running container and exits with "
            "its status (128+N when killed by signal N); refused in a paused or stopped one",
    "run": "runc convention (not in the spec): run = create + start + wait, exits with the process's status, then "
           "deletes the container",
    "leftovers": 'runtime.md "Lifecycle" step 9: "The container MUST be destroyed by undoing the steps performed during '
                 'create phase"; "Delete": "Deleting a container MUST delete the resources that were created during the '
                 'create step."',
    "crash": "the runtime crashed (traceback, internal error or panic) instead of succeeding or refusing",
    "hang": "the runtime did not return in time",
}

#: Known deviations that can be tolerated (``--accept NAME``) so the fuzzer explores past them.
DEVIATIONS: dict[str, str] = {
    "delete-created": "delete without --force of a created container succeeds (spec: MUST error unless stopped)",
    "kill-all-stopped": "kill --all of a stopped container succeeds (spec: MUST error unless created or running)",
    "kill-all-thaws": "kill --all of a paused container leaves it running (thawed), not paused",
    "kill-bad-signal": "kill with a name that is no signal (BOGUS) exits 0 (it cannot send it: it must error)",
}


class Violation(AssertionError):
    """A step or an invariant disagreed with the model. ``str()`` is the finding, the spec text
    it stands on and a shell script reproducing the sequence."""

    def __init__(self, check: str, message: str, script: str) -> None:
        self.check = check
        self.message = message
        self.script = script
        super().__init__(f"[{check}] {message}\n  spec: {SPEC.get(check, '')}\n\nreproducer (sh):\n{script}")


# --------------------------------------------------------------------------------------------------
# The reproducer trace


class Trace:
    """The shell commands of one example, rendered as a script that replays them."""

    def __init__(self, runtime: Runtime, work: Workdir, cids: list[str]) -> None:
        self.runtime = runtime
        self.work = work
        self.cids = cids
        self.lines: list[str] = []
        self.names: dict[str, str] = {}

    def _sh(self, arg: str) -> str:
        for real, name in self.names.items():
            if arg == real:
                return f'"$T/{name}"'
            if arg.startswith(real + "/"):
                return f'"$T/{name}"{shlex.quote(arg[len(real):])}'
        if arg.startswith(self.work.path + "/"):
            return f'"$T"{shlex.quote(arg[len(self.work.path):])}'
        return shlex.quote(arg)

    def bundle(self, path: str, config: dict) -> None:
        """A bundle was written (rendered as a heredoc)."""
        name = f"b{len(self.names) + 1}"
        self.names[path] = name
        self.lines.append(f"bundle {name} <<'EOF'\n{json.dumps(config, separators=(',', ':'))}\nEOF")

    def command(self, args: tuple[str, ...], want: str, got: Result | None = None) -> None:
        """A runtime call and the exit status the model wants: ``ok``, ``error``, ``any`` or a
        number (and what happened, when it matters)."""
        line = f"want {want} rt " + " ".join(self._sh(a) for a in args)
        if got is not None:
            line += f"  # got: {got.summary()}"
        self.lines.append(line)

    def status(self, cid: str, allowed: set[str]) -> None:
        """The model's statuses for ``cid`` at this point."""
        self.lines.append(f"want_status {shlex.quote(cid)} '{'|'.join(sorted(allowed))}'")

    def wait(self, cid: str, status: str) -> None:
        """The fuzzer polled until ``state`` said ``status``."""
        self.lines.append(f"wait_status {shlex.quote(cid)} {status}")

    def comment(self, text: str) -> None:
        """A comment line."""
        self.lines.append("# " + text.replace("\n", "\n# "))

    def script(self, failure: str = "") -> str:
        """The whole reproducer."""
        rt = self.runtime
        head = [
            "#!/bin/sh",
            "# Reproducer written by the nano-sandbox lifecycle fuzzer (python -m nano_sandbox.fuzz).",
            f"# Runtime: {rt.version} ({rt.path}); mount namespace per call: {rt.mountns}",
        ]
        if failure:
            head += ["# Failure: " + line for line in failure.splitlines()]
        head += [
            "# Run as root. Every container is deleted at the end.",
            "set -u",
            'T=$(mktemp -d /tmp/nk-repro.XXXXXX)',
            f"ROOTFS={shlex.quote(str(self.work.rootfs_source))}   # built by: nk-runtime bundle build busybox",
            rt.shell_function(),
            "status() { rt state \"$1\" 2>/dev/null | tr -d ' \\n' | sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p'; }",
            'wait_status() { i=0; while [ $i -lt 300 ]; do [ "$(status "$1")" = "$2" ] && return 0; sleep 0.05; '
            'i=$((i+1)); done; unexpected "$1 is \'$(status "$1")\' after 15s, expected $2"; }',
            'bundle() { mkdir -p "$T/$1" && cp -a "$ROOTFS" "$T/$1/rootfs" && cat > "$T/$1/config.json"; }',
            'unexpected() { echo "UNEXPECTED: $*" >&2; FAILED=1; }',
            "# want ok|error|any|N CMD...: run CMD, report an exit status the model does not allow",
            'want() { w=$1; shift; "$@"; rc=$?; case $w in ok) [ $rc -eq 0 ];; error) [ $rc -ne 0 ];; any) true;; '
            '*) [ $rc -eq "$w" ];; esac || unexpected "$* exited $rc, expected $w"; }',
            'want_status() { s=$(status "$1"); case "|$2|" in *"|$s|"*) ;; *) unexpected "$1 is \'$s\', expected $2";; '
            'esac; }',
            "FAILED=",
            "",
        ]
        tail = ["", 'if [ -n "$FAILED" ]; then echo "reproduced: the runtime disagreed with the model"; '
                    'else echo "not reproduced"; fi', "# clean up"]
        tail += [f"rt delete --force {shlex.quote(c)} 2>/dev/null" for c in self.cids] + ['rm -rf "$T"']
        return "\n".join(head + self.lines + tail) + "\n"


# --------------------------------------------------------------------------------------------------
# The model of one container id


@dataclass
class Box:
    """The model of one container id.

    ``status`` is the status the container has if nothing asynchronous happened; ``may_stop``
    says its process may have ended meanwhile (so ``stopped`` is allowed too); ``will_stop``
    says it certainly ends by itself (a ``wait`` must see ``stopped``).
    """

    cid: str
    exists: bool = False
    status: str | None = None
    may_stop: bool = False
    will_stop: bool = False
    doomed: bool = False      # SIGKILL sent while paused: it dies once thawed
    pending: bool = False     # another signal sent while paused to a program it may end
    untracked: bool = False   # a tolerated deviation happened: status no longer modelled
    spec: ContainerSpec | None = None
    bundle: str | None = None
    init_pid: int | None = None
    pids: set[int] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)
    bundles: list[str] = field(default_factory=list)
    deleted_at: float | None = None
    clean: bool = True        # nothing of a deleted container left (verified)

    def possible(self) -> set[str]:
        """The statuses ``state`` may report now."""
        if self.untracked:
            return {"created", "running", "paused", "stopped"}
        out = {self.status} if self.status else set()
        if self.may_stop:
            out.add("stopped")
        return out

    def describe(self) -> str:
        """The model in words."""
        if not self.exists:
            return "does not exist"
        return "/".join(sorted(self.possible())) + (f" ({self.spec.label()})" if self.spec else "")

    def reset(self, spec: ContainerSpec | None, bundle: str | None) -> None:
        """A new container was created under this id."""
        self.exists = True
        self.status = "created"
        self.may_stop = self.will_stop = self.doomed = self.pending = self.untracked = False
        self.spec = spec
        self.bundle = bundle
        self.init_pid = None
        self.pids = set()
        self.cgroups = set()
        self.deleted_at = None
        self.clean = False

    def stopped(self) -> None:
        """The container is known to be stopped."""
        self.status = "stopped"
        self.may_stop = self.will_stop = self.doomed = self.pending = False

    def gone(self) -> None:
        """The container was deleted."""
        self.exists = False
        self.status = None
        self.may_stop = self.will_stop = self.doomed = self.pending = self.untracked = False
        self.deleted_at = time.monotonic()


# --------------------------------------------------------------------------------------------------
# The state machine


class LifecycleMachine(RuleBasedStateMachine):
    """Drives ``runtime`` through random lifecycle steps; see the module docstring.

    Configure a subclass with :func:`make_machine` (the runtime, the work directory, the number of
    ids and the tolerated deviations are class attributes).
    """

    runtime: Runtime
    work: Workdir
    n_ids: int = MAX_IDS
    accept: frozenset[str] = frozenset()
    validator: StateValidator | None = None
    base: dict = {}
    #: the reproducer of the last failing example (the shrunk one, as hypothesis replays it last)
    last_failure: Violation | None = None
    #: operation -> [exit 0 count, failed count], over every example of the run
    stats: dict[str, list[int]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.boxes = [Box(f"fz{self.runtime.token}-{'abc'[i]}") for i in range(self.n_ids)]
        self.trace = Trace(self.runtime, self.work, [b.cid for b in self.boxes])
        self.failed = False
        self.touched: Box | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def box(self, slot: int) -> Box:
        """The model of id number ``slot``."""
        return self.boxes[slot % len(self.boxes)]

    def pick(self, data) -> Box:
        """One of the existing containers, drawn by hypothesis."""
        live = [b.cid for b in self.boxes if b.exists]
        cid = data.draw(st.sampled_from(live), label="id")
        return next(b for b in self.boxes if b.cid == cid)

    def fail(self, check: str, message: str) -> None:
        """Raise :class:`Violation` for ``check`` with the reproducer of the steps so far."""
        self.failed = True
        self.trace.comment(f"^^^ FAILED [{check}]: {message}")
        v = Violation(check, message, self.trace.script(f"[{check}] {message}"))
        type(self).last_failure = v
        raise v

    def call(self, *args: str, timeout: float = 60) -> Result:
        """Run the runtime; a hang or a crash (traceback, internal error, panic) is a violation."""
        r = self.runtime(*args, timeout=timeout)
        if r.timed_out:
            self.trace.command(r.args, "any", r)
            self.fail("hang", f"`{' '.join(args)}` did not return within {timeout:.0f}s")
        m = crash_marker(r.stderr)
        if m:
            self.trace.command(r.args, "any", r)
            self.fail("crash", f"`{' '.join(args)}` printed {m!r}: {r.stderr.strip()[:800]}")
        return r

    def expect(self, args: tuple[str, ...], outcome: str, check: str, b: Box | None = None, *,
               code: int | None = None, timeout: float = 60) -> Result:
        """Run and check: ``outcome`` is ``ok`` (exit 0, or ``code``), ``error`` (non-zero, and
        not ``code``) or ``any``."""
        r = self.call(*args, timeout=timeout)
        key = " ".join(a for a in args[:2] if a.startswith("-") or a == args[0])
        counts = self.stats.setdefault(key, [0, 0])
        counts[0 if r.returncode == 0 else 1] += 1
        want = 0 if code is None else code
        if outcome == "ok":
            self.trace.command(r.args, "ok" if want == 0 else str(want), r if r.returncode != want else None)
            if r.returncode != want:
                self.fail(check, f"`{' '.join(args)}` must exit {want} (model: {b.describe() if b else '-'}), "
                                 f"got {r.summary()}")
        elif outcome == "error":
            self.trace.command(r.args, "error", r if r.returncode == 0 or r.returncode == want else None)
            if r.returncode == 0 or (code is not None and r.returncode == code):
                self.fail(check, f"`{' '.join(args)}` must fail (model: {b.describe() if b else '-'}), got "
                                 f"{r.summary()}")
        else:
            self.trace.command(r.args, "any", r)
        return r

    def read_state(self, b: Box) -> tuple[Result, dict | None]:
        """``state ID``: the result and the parsed document (None when it failed)."""
        r = self.call("state", b.cid)
        if r.returncode != 0:
            return r, None
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            self.trace.command(r.args, "ok", r)
            self.fail("state", f"`state {b.cid}` printed no JSON: {r.stdout[:300]!r}")
        return r, doc

    def poll_stopped(self, b: Box, check: str, why: str) -> None:
        """Poll until ``state`` says stopped (bounded); the model then says stopped."""
        deadline = time.monotonic() + STOP_TIMEOUT
        seen = ""
        while time.monotonic() < deadline:
            r, doc = self.read_state(b)
            seen = doc.get("status", "?") if doc else r.summary()
            if doc and doc.get("status") == "stopped":
                self.trace.wait(b.cid, "stopped")
                b.stopped()
                return
            time.sleep(0.05)
        self.trace.wait(b.cid, "stopped")
        self.fail(check, f"{b.cid}: {why}, yet `state` still says {seen!r} after {STOP_TIMEOUT:.0f}s")

    def record_processes(self, b: Box, pid: int) -> None:
        """Remember the init pid and the cgroup directories it is in, to check them after delete."""
        b.init_pid = pid
        b.pids.add(pid)
        b.cgroups.update(cgroup_dirs_of_pid(pid))
        b.cgroups.update(cgroup_dirs_named(b.cid))

    # -- setup --------------------------------------------------------------------------------
    @initialize()
    def no_containers_yet(self) -> None:
        """Every example starts from an empty state root: what a failed example left behind (its
        failure was reported) is force-deleted first."""
        for cid in self.runtime.container_dirs():
            self.runtime("delete", "--force", cid, timeout=60)

    # -- rules --------------------------------------------------------------------------------
    @rule(slot=st.integers(0, MAX_IDS - 1), spec=container_specs(),
          then=st.sampled_from(("start", "nothing", "start", "run")))
    def create(self, slot: int, spec: ContainerSpec, then: str) -> None:
        """``create --bundle B ID``: must succeed for a free id, fail for a taken one; ``then``
        ``start`` starts it right away; ``run`` does ``run`` instead (for a program that ends by
        itself: see :meth:`do_run`)."""
        b = self.touched = self.box(slot)
        if then == "run" and spec.program.exits:
            self.do_run(b, spec)
            return
        self.do_create(b, spec)
        if then == "start" and b.exists and b.status == "created":
            self.do_start(b)

    def do_create(self, b: Box, spec: ContainerSpec) -> None:
        """``create --bundle B ID``."""
        cfg = spec.config(self.base, self.runtime.cgroups_path(b.cid))
        bundle = self.work.bundle(b.cid, cfg)
        self.trace.bundle(bundle, cfg)
        self.trace.comment(f"{b.cid}: {spec.label()}")
        if b.exists:
            self.expect(("create", "--bundle", bundle, b.cid), "error", "create-exists", b)
            self.work.remove_bundle(bundle)
            return
        self.expect(("create", "--bundle", bundle, b.cid), "ok", "create", b)
        b.reset(spec, bundle)
        b.bundles.append(bundle)
        r, doc = self.read_state(b)
        if doc and isinstance(doc.get("pid"), int) and doc["pid"] > 0:
            self.record_processes(b, doc["pid"])

    def do_start(self, b: Box) -> None:
        """``start ID``: must succeed for created, fail otherwise."""
        self.touched = b
        args = ("start", b.cid)
        if not b.exists:
            self.expect(args, "error", "unknown-id", b)
            return
        if b.untracked:
            self.expect(args, "any", "start", b)
            return
        if b.status == "created":
            r = self.expect(args, "any" if b.may_stop else "ok", "start", b)
            if r.returncode == 0:
                b.status = "running"
                prog = b.spec.program if b.spec else None
                b.may_stop = b.will_stop = bool(prog and prog.exits)
            else:
                b.stopped()  # only a stopped container may refuse start (checked by the invariant)
            return
        self.expect(args, "error", "start-not-created", b)

    def do_kill(self, b: Box, sig: str, all_: bool) -> None:
        """``kill [--all] ID SIG``: must succeed for created/running (and paused, runc), fail for
        stopped; SIGKILL must then stop it."""
        self.touched = b
        args = ("kill", "--all", b.cid, sig) if all_ else ("kill", b.cid, sig)
        if not b.exists:
            self.expect(args, "error", "unknown-id", b)
            return
        if sig == "BOGUS":
            self.expect(args, "any" if "kill-bad-signal" in self.accept else "error", "kill-bad-signal", b)
            return
        if b.untracked:
            r = self.expect(args, "any", "kill", b)
            return
        if b.status == "stopped":
            tolerated = all_ and "kill-all-stopped" in self.accept
            self.expect(args, "any" if tolerated else "error", "kill-not-live", b)
            return
        # signal 0 sends nothing: a runtime may accept it (kill(2) semantics) or refuse it
        r = self.expect(args, "any" if (b.may_stop or sig == "0") else "ok", "kill", b)
        if r.returncode != 0:
            if sig != "0":
                b.stopped()  # a live container may not refuse a signal (checked by the invariant)
            return
        prog = b.spec.program if b.spec else None
        if sig == "KILL":
            if b.status == "paused":
                b.doomed = b.may_stop = True  # frozen: dies when thawed (or at once if the runtime thaws)
            else:
                self.poll_stopped(b, "stopped-after-kill", "SIGKILL was sent to its process")
        elif sig != "0":
            if b.status == "created":
                b.may_stop = True  # the runtime's own init may die of it
            elif b.status == "running" and prog is not None and prog.fragile:
                b.may_stop = True
            elif b.status == "paused" and prog is not None and prog.fragile:
                b.pending = True
        if all_ and b.status == "paused" and "kill-all-thaws" in self.accept:
            _, doc = self.read_state(b)
            if doc is not None and doc.get("status") in ("running", "stopped"):
                self.thawed(b, "thawed by kill --all")

    def do_delete(self, b: Box, force: bool) -> None:
        """``delete [--force] ID``: must succeed for stopped (any with --force; an unknown id with
        --force too), fail otherwise; nothing of it may be left."""
        self.touched = b
        args = ("delete", "--force", b.cid) if force else ("delete", b.cid)
        if not b.exists:
            self.expect(args, "ok" if force else "error", "delete-force-unknown" if force else "unknown-id", b)
            return
        if force:
            self.expect(args, "ok", "delete-force", b)
            b.gone()
            return
        if b.untracked or b.may_stop or (b.status == "created" and "delete-created" in self.accept):
            r = self.expect(args, "any", "delete", b)
        elif b.status == "stopped":
            r = self.expect(args, "ok", "delete", b)
        else:
            r = self.expect(args, "error", "delete-not-stopped", b)
        if r.returncode == 0:
            b.gone()

    def do_pause(self, b: Box) -> None:
        """``pause ID``: must succeed for running, fail for stopped. Not in the spec: pausing a
        created container (runc pauses it and reports paused, crun freezes it and still reports
        created, nk-runtime refuses) or a paused one (crun accepts, runc and nk-runtime refuse) is
        runtime-defined: either outcome is accepted; a paused created container is no longer
        modelled (its status may be any) until it is deleted."""
        self.touched = b
        args = ("pause", b.cid)
        if not b.exists:
            self.expect(args, "error", "unknown-id", b)
            return
        if b.untracked:
            self.expect(args, "any", "pause", b)
            return
        if b.status == "running":
            r = self.expect(args, "any" if b.may_stop else "ok", "pause", b)
            if r.returncode == 0:
                b.status = "paused"
                b.will_stop = False  # frozen; may_stop stays: it may have ended just before
            else:
                b.stopped()
            return
        if b.status == "created":
            r = self.expect(args, "any", "pause", b)
            if r.returncode == 0:
                b.untracked = True
            return
        if b.status == "paused":
            self.expect(args, "any", "pause", b)
            return
        self.expect(args, "error", "pause", b)

    def do_resume(self, b: Box) -> None:
        """``resume ID``: must succeed for paused, fail for stopped; for a created or running
        one (not frozen) either outcome is accepted, the status must not change (runtime-defined:
        runc and nk-runtime refuse, crun accepts). A container killed while paused must then
        stop."""
        self.touched = b
        args = ("resume", b.cid)
        if not b.exists:
            self.expect(args, "error", "unknown-id", b)
            return
        if b.untracked:
            self.expect(args, "any", "resume", b)
            return
        if b.status in ("created", "running"):
            # not frozen: runc and nk-runtime refuse, crun accepts and changes nothing
            self.expect(args, "any", "resume", b)
            return
        if b.status != "paused":
            self.expect(args, "error", "resume", b)
            return
        r = self.expect(args, "any" if b.may_stop else "ok", "resume", b)
        if r.returncode != 0:
            b.stopped()
            return
        self.thawed(b, "resumed")

    def thawed(self, b: Box, how: str) -> None:
        """A paused container was thawed: running again, and stopped soon if it was killed."""
        prog = b.spec.program if b.spec else None
        doomed = b.doomed
        b.status = "running"
        b.will_stop = bool(prog and prog.exits)
        b.may_stop = b.may_stop or b.pending or b.will_stop
        b.doomed = b.pending = False
        if doomed:
            self.poll_stopped(b, "stopped-after-kill", f"SIGKILL was sent while it was paused, then it was {how}")

    def do_exec_(self, b: Box, cmd: tuple[tuple[str, ...], int]) -> None:
        """``exec ID ARGS``: in a created or running container exits with the process's status
        (137 for SIGKILL); refused in a paused or stopped one."""
        self.touched = b
        argv, code = cmd
        args = ("exec", b.cid, *argv)
        if not b.exists:
            self.expect(args, "error", "unknown-id", b, code=code, timeout=30)
            return
        if b.untracked or b.may_stop:
            self.expect(args, "any", "exec", b, timeout=30)
        elif b.status in ("created", "running"):
            self.expect(args, "ok", "exec", b, code=code, timeout=30)
        else:
            self.expect(args, "error", "exec", b, code=code, timeout=30)

    def do_exec_detached(self, b: Box) -> None:
        """``exec --detach --pid-file F ID sleep 1000``: a second process, which kill --all and
        delete must take down with the container."""
        self.touched = b
        pidfile = os.path.join(self.work.path, f"exec-{b.cid}.pid")
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
        args = ("exec", "--detach", "--pid-file", pidfile, b.cid, "sleep", "1000")
        if not b.exists:
            self.expect(args, "error", "unknown-id", b, timeout=30)
            return
        if b.untracked or b.may_stop:
            r = self.expect(args, "any", "exec", b, timeout=30)
        elif b.status in ("created", "running"):
            r = self.expect(args, "ok", "exec", b, timeout=30)
        else:
            r = self.expect(args, "error", "exec", b, timeout=30)
        if r.returncode == 0:
            try:
                with open(pidfile) as f:
                    b.pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                self.fail("exec", f"exec --detach succeeded but wrote no pid to {pidfile}")

    def do_run(self, b: Box, spec: ContainerSpec) -> None:
        """``run --bundle B ID`` of a program that ends by itself: exits with its status and
        leaves nothing behind; refused for a taken id."""
        cfg = spec.config(self.base, self.runtime.cgroups_path(b.cid))
        bundle = self.work.bundle(b.cid, cfg)
        self.trace.bundle(bundle, cfg)
        self.trace.comment(f"{b.cid}: {spec.label()}")
        args = ("run", "--bundle", bundle, b.cid)
        if b.exists:
            self.expect(args, "error", "create-exists", b, timeout=60)
            self.work.remove_bundle(bundle)
            return
        self.expect(args, "ok", "run", b, code=spec.program.code, timeout=60)
        b.reset(spec, bundle)
        b.bundles.append(bundle)
        b.cgroups.update(cgroup_dirs_named(b.cid))
        b.gone()

    def do_wait(self, b: Box) -> None:
        """Let a process that ends by itself end (then ``state`` must say stopped); for any other
        container this is just a look at its state."""
        self.touched = b
        if b.exists and not b.untracked and b.will_stop and b.status != "stopped":
            self.poll_stopped(b, "stopped-after-exit", f"its process ({b.spec.label() if b.spec else '?'}) ends by itself")

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data())
    def start(self, data) -> None:
        """``start`` on an existing container: see :meth:`do_start`."""
        self.do_start(self.pick(data))

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data(), sig=st.sampled_from(SIGNALS), all_=st.booleans())
    def kill(self, data, sig: str, all_: bool) -> None:
        """``kill`` on an existing container: see :meth:`do_kill`."""
        self.do_kill(self.pick(data), sig, all_)

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data(), force=st.booleans())
    def delete(self, data, force: bool) -> None:
        """``delete`` on an existing container: see :meth:`do_delete`."""
        self.do_delete(self.pick(data), force)

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data())
    def pause(self, data) -> None:
        """``pause`` on an existing container: see :meth:`do_pause`."""
        self.do_pause(self.pick(data))

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data())
    def resume(self, data) -> None:
        """``resume`` on an existing container: see :meth:`do_resume`."""
        self.do_resume(self.pick(data))

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data(), cmd=st.sampled_from(EXEC_COMMANDS))
    def exec_(self, data, cmd: tuple[tuple[str, ...], int]) -> None:
        """``exec`` on an existing container: see :meth:`do_exec_`."""
        self.do_exec_(self.pick(data), cmd)

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data())
    def exec_detached(self, data) -> None:
        """``exec detached`` on an existing container: see :meth:`do_exec_detached`."""
        self.do_exec_detached(self.pick(data))

    @precondition(lambda self: any(b.exists for b in self.boxes))
    @rule(data=st.data())
    def wait(self, data) -> None:
        """``wait`` on an existing container: see :meth:`do_wait`."""
        self.do_wait(self.pick(data))

    @precondition(lambda self: any(not b.exists for b in self.boxes))
    @rule(data=st.data(), op=st.sampled_from(("start", "kill", "kill --all", "delete", "delete --force", "pause",
                                              "resume", "exec", "exec --detach")))
    def on_unknown_id(self, data, op: str) -> None:
        """An operation on an id that was never created or was deleted: it must fail (``delete
        --force`` must succeed, runc's convention)."""
        cid = data.draw(st.sampled_from([b.cid for b in self.boxes if not b.exists]), label="id")
        b = self.touched = next(x for x in self.boxes if x.cid == cid)
        if op.startswith("kill"):
            self.do_kill(b, "KILL", op.endswith("--all"))
        elif op.startswith("delete"):
            self.do_delete(b, op.endswith("--force"))
        elif op == "exec":
            self.do_exec_(b, EXEC_COMMANDS[0])
        elif op == "exec --detach":
            self.do_exec_detached(b)
        else:
            getattr(self, f"do_{op}")(b)

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def state_matches_the_model(self) -> None:
        """``state`` of every id agrees with the model; nothing of a deleted one is left."""
        for b in self.boxes:
            if b.exists:
                self.check_state(b)
            else:
                self.check_absent(b)
        self.touched = None

    def check_state(self, b: Box) -> None:
        """The invariant for an existing container (see :meth:`state_matches_the_model`)."""
        r, doc = self.read_state(b)
        if doc is None:
            self.trace.command(r.args, "ok", r)
            self.fail("state", f"`state {b.cid}` failed for an existing container (model: {b.describe()}): {r.summary()}")
        problems = self.validator.problems(doc) if self.validator else []
        if problems:
            self.trace.command(r.args, "ok", r)
            self.fail("state", f"`state {b.cid}` is not valid against the state schema: {problems}; document: {doc}")
        if doc.get("id") != b.cid:
            self.fail("state", f"`state {b.cid}` names id {doc.get('id')!r}")
        if not os.path.isabs(str(doc.get("bundle"))):
            self.fail("state", f"`state {b.cid}` bundle {doc.get('bundle')!r} is not an absolute path")
        if b.bundle and os.path.realpath(str(doc.get("bundle"))) != os.path.realpath(b.bundle):
            self.fail("state", f"`state {b.cid}` names bundle {doc.get('bundle')!r}, not {b.bundle!r}")
        status = doc.get("status")
        allowed = b.possible()
        if b is self.touched or status not in allowed:
            self.trace.status(b.cid, allowed)
        if status not in allowed:
            self.fail("state-model", f"{b.cid} ({b.spec.label() if b.spec else '?'}): `state` says {status!r}, the "
                                     f"model allows {sorted(allowed)}")
        pid = doc.get("pid")
        if status in LIVE:
            if not isinstance(pid, int) or pid <= 0:
                self.fail("pid", f"{b.cid} is {status} but its state has pid {pid!r}")
            if b.init_pid is None:
                self.record_processes(b, pid)
            elif pid != b.init_pid:
                self.fail("pid", f"{b.cid}: state pid changed from {b.init_pid} to {pid} while {status}")
            if not process_alive(pid) and "stopped" not in allowed:
                self.fail("state-model", f"{b.cid} is reported {status} but its process {pid} is gone")
        elif status == "stopped" and pid not in (None, 0):
            if process_alive(pid) and pid == b.init_pid:
                self.fail("state-model", f"{b.cid} is reported stopped but its process {pid} is alive")
        if status == "stopped" and not b.untracked:
            b.stopped()

    def check_absent(self, b: Box) -> None:
        """The invariant for an id with no container: state fails, nothing of it is left."""
        r = self.call("state", b.cid)
        if r.returncode == 0:
            self.trace.command(r.args, "error", r)
            self.fail("unknown-id", f"`state {b.cid}` succeeds for a container that was deleted or never created: "
                                    f"{r.stdout.strip()[:300]}")
        if b.clean:
            return
        left = self.leftovers(b)
        if left and b.deleted_at is not None and time.monotonic() - b.deleted_at < GONE_TIMEOUT:
            deadline = b.deleted_at + GONE_TIMEOUT
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = self.leftovers(b)
        if left:
            self.fail("leftovers", f"{b.cid} was deleted but left behind: {left}")
        b.clean = True

    def leftovers(self, b: Box) -> list[str]:
        """What of a deleted container is still on the host."""
        out = []
        sd = os.path.join(self.runtime.root, b.cid)
        if os.path.exists(sd):
            out.append(f"state dir {sd}")
        out += [f"process {p}" for p in sorted(b.pids) if process_alive(p)]
        out += [f"cgroup {d}" for d in sorted(b.cgroups | set(cgroup_dirs_named(b.cid))) if os.path.isdir(d)]
        for bd in b.bundles:
            out += [f"host mount {m}" for m in mounts_mentioning(bd)]
        return out

    # -- end of example -------------------------------------------------------------------------
    def teardown(self) -> None:
        """delete --force every container of the example, then verify nothing is left."""
        ids = sorted({b.cid for b in self.boxes if b.exists} | set(self.runtime.container_dirs()))
        problems = []
        for cid in ids:
            r = self.runtime("delete", "--force", cid, timeout=60)
            if not r.ok:
                problems.append(f"delete --force {cid}: {r.summary()}")
        for b in self.boxes:
            if b.exists:
                b.gone()
        deadline = time.monotonic() + GONE_TIMEOUT
        while True:
            left = [x for b in self.boxes for x in self.leftovers(b)]
            left += [f"state dir {d}" for d in self.runtime.container_dirs()]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for b in self.boxes:
            for bd in b.bundles:
                self.work.remove_bundle(bd)
        if problems or left:
            if self.failed:
                print(f"warning: cleanup after a failed example: {problems + left}", file=sys.stderr)
                return
            self.trace.comment("teardown: delete --force of every container")
            self.fail("leftovers", f"after delete --force of every container: {problems + left}")


def make_machine(runtime: Runtime, work: Workdir, n_ids: int = MAX_IDS, accept: frozenset[str] | set[str] = frozenset(),
                 validator: StateValidator | None = None) -> type[LifecycleMachine]:
    """A :class:`LifecycleMachine` subclass bound to ``runtime`` and ``work``.

    Args:
        runtime: the runtime under test (its ``--root`` must be private to this machine).
        work: where bundles are written.
        n_ids: how many container ids (1 to :data:`MAX_IDS`).
        accept: names from :data:`DEVIATIONS` to tolerate.
        validator: the state validator (built when None).
    """
    unknown = set(accept) - set(DEVIATIONS)
    if unknown:
        raise ValueError(f"unknown deviation(s) {sorted(unknown)}; known: {sorted(DEVIATIONS)}")
    if not 1 <= n_ids <= MAX_IDS:
        raise ValueError(f"n_ids must be 1..{MAX_IDS}")
    attrs = {
        "runtime": runtime,
        "work": work,
        "n_ids": n_ids,
        "accept": frozenset(accept),
        "validator": validator or StateValidator(),
        "base": base_config(),
        "last_failure": None,
        "stats": {},
    }
    return type(f"Lifecycle_{runtime.kind.replace('-', '_')}", (LifecycleMachine,), attrs)
