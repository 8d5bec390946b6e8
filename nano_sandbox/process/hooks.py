"""Running OCI hooks (runtime-spec config.md "POSIX-platform Hooks").

A hook is an executable run with ``args`` and ``env`` exactly as configured (``args[0]`` is its
argv[0]; an empty env means an empty environment) and the container's state JSON on its stdin.
Its stdout and stderr are captured, as runc does, and quoted in the error when it fails.
``timeout`` (seconds) kills it with SIGKILL when it runs over. Used by the runtime (prestart,
createRuntime, poststart, poststop) and by the init (createContainer, startContainer).
"""

from __future__ import annotations

import os
import select
import signal
import time

from nano_sandbox import errors

_OUTPUT_LIMIT = 4096


class HookError(errors.NkError):
    """A hook failed to start, exited non-zero, was killed, or timed out. ``str()`` names the
    hook kind, index and path: ``prestart hook 0 (/usr/bin/x): exited with status 3``."""


def run_hook(hook, state_json: bytes) -> None:
    """Run ``hook`` (a :class:`nano_sandbox.process.plan.Hook`) to completion.

    Raises:
        HookError: it could not start, exited non-zero, died by a signal or timed out.
    """
    name = f"{hook.kind} hook {hook.index} ({hook.path})"
    r, w = os.pipe2(os.O_CLOEXEC)
    outr, outw = os.pipe2(os.O_CLOEXEC)
    errr, errw = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r, 0)
            os.dup2(outw, 1)
            os.dup2(outw, 2)
            env = dict(e.split("=", 1) for e in hook.env if "=" in e)
            os.execve(hook.path, hook.args or [hook.path], env)
        except OSError as e:
            os.write(errw, f"{e.errno}:{e.strerror}".encode())
        os._exit(127)
    os.close(r)
    os.close(outw)
    os.close(errw)
    try:
        os.write(w, state_json)
    except OSError:
        pass  # the hook need not read its stdin
    os.close(w)
    output = bytearray()
    try:
        status = _wait(pid, hook.timeout, name, outr, output)
    finally:
        os.close(outr)
    err = os.read(errr, 512)
    os.close(errr)
    if err:
        _, _, msg = err.decode().partition(":")
        raise HookError(f"{name}: cannot execute: {msg}")
    tail = output.decode(errors="replace").strip()
    detail = f", output: {tail}" if tail else ""
    if os.WIFSIGNALED(status):
        raise HookError(f"{name}: killed by signal {os.WTERMSIG(status)}{detail}")
    code = os.WEXITSTATUS(status)
    if code != 0:
        raise HookError(f"{name}: exited with status {code}{detail}")


def _wait(pid: int, timeout: int | None, name: str, outfd: int, output: bytearray) -> int:
    """Wait for ``pid`` while collecting its output; kill it after ``timeout`` seconds.

    The output pipe may stay open after the hook exits (a daemon it started inherited it), so
    the exit is polled too rather than waiting for EOF.
    """
    deadline = None if not timeout else time.monotonic() + timeout
    open_out = True
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            if open_out:
                os.set_blocking(outfd, False)
                try:
                    chunk = os.read(outfd, _OUTPUT_LIMIT)
                    output += chunk[: max(0, _OUTPUT_LIMIT - len(output))]
                except BlockingIOError:
                    pass
            return status
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise HookError(f"{name}: timed out after {timeout}s (killed)")
        wait = 0.05 if left is None else min(left, 0.05)
        if open_out:
            ready, _, _ = select.select([outfd], [], [], wait)
            if ready:
                chunk = os.read(outfd, 65536)
                if not chunk:
                    open_out = False
                elif len(output) < _OUTPUT_LIMIT:
                    output += chunk[: _OUTPUT_LIMIT - len(output)]
        else:
            time.sleep(min(wait, 0.002))
