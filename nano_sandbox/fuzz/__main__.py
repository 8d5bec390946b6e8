"""``python -m nano_sandbox.fuzz --runtime PATH [options]``: fuzz a runc-compatible runtime.

Modes:

* ``lifecycle`` (default): random sequences of lifecycle operations on a few container ids,
  checked against the OCI lifecycle model (:mod:`nano_sandbox.fuzz.lifecycle`).
* ``configs``: random ``config.json`` documents, valid and invalid, fed to ``create``
  (:mod:`nano_sandbox.fuzz.configs`).

Examples::

    python -m nano_sandbox.fuzz --runtime .venv/bin/nk-runtime --examples 50
    python -m nano_sandbox.fuzz --runtime /usr/sbin/runc --examples 50 --seed 1
    python -m nano_sandbox.fuzz --runtime /usr/bin/crun --accept delete-created,kill-all-stopped
    python -m nano_sandbox.fuzz --runtime .venv/bin/nk-runtime --mode configs --examples 200

On a failure it prints the finding, the spec text it stands on and a shell script reproducing
the shrunk sequence, and exits 1. Exit statuses: 0 no failure found, 1 failure found, 2 usage or
set-up error (hypothesis missing, not root...), 77 skipped (the runtime cannot run containers on
this host: the reason is printed as ``skipped: <reason>``).

Each run has its own temporary directory (bundles, a copy of the busybox rootfs) and the runtime
its own ``--root`` (``--root DIR`` to choose it); every container is force-deleted at the end of
each example and the fuzzer verifies nothing is left. The hypothesis example database is off
unless ``--database DIR`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from nano_sandbox.fuzz import FuzzSetupError, Skip, require_hypothesis

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 77


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m nano_sandbox.fuzz", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", required=True, help="the runtime binary (nk-runtime, runc, crun, ...)")
    p.add_argument("--mode", choices=("lifecycle", "configs"), default="lifecycle")
    p.add_argument("--examples", type=int, default=20, help="hypothesis examples (default 20)")
    p.add_argument("--steps", type=int, default=20, help="steps per lifecycle example (default 20)")
    p.add_argument("--ids", type=int, default=3, help="container ids per lifecycle example, 1..3 (default 3)")
    p.add_argument("--seed", type=int, help="hypothesis seed (default: random; see --derandomize)")
    p.add_argument("--derandomize", action="store_true", help="use hypothesis's fixed derandomized sequence")
    p.add_argument("--root", help="the runtime's --root (default: a directory inside the run's temp dir)")
    p.add_argument("--mountns", default="auto", choices=("auto", "host", "private", "private-no-cgroup2"),
                   help="where each runtime call runs (default auto: host for nk-runtime, a private mount namespace "
                        "for others, without the hybrid cgroup2 mount for crun)")
    p.add_argument("--accept", action="append", default=[], metavar="NAME[,NAME]",
                   help="tolerate known deviations (see --list-deviations)")
    p.add_argument("--list-deviations", action="store_true", help="print the deviations --accept knows and exit")
    p.add_argument("--database", metavar="DIR", help="hypothesis example database directory (default: none)")
    p.add_argument("--no-shrink", action="store_true", help="report the first failure without shrinking it")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--reproducer", metavar="FILE", help="also write the failing sequence's shell script to FILE")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    p.add_argument("--verbose", "-v", action="store_true", help="print every step hypothesis runs")
    return p.parse_args(argv)


def _settings(a: argparse.Namespace, **extra):
    from hypothesis import HealthCheck, Phase, Verbosity, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if not a.no_shrink:
        phases.append(Phase.shrink)
    return settings(
        max_examples=a.examples,
        deadline=None,
        derandomize=a.derandomize,
        database=DirectoryBasedExampleDatabase(a.database) if a.database else None,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        verbosity=Verbosity.verbose if a.verbose else settings.default.verbosity,
        **extra,
    )


def _write_reproducer(a: argparse.Namespace, script: str, out) -> None:
    if a.reproducer:
        with open(a.reproducer, "w") as f:
            f.write(script)
        os.chmod(a.reproducer, 0o755)
        print(f"reproducer written to {a.reproducer}", file=out)


def run_lifecycle(a: argparse.Namespace, runtime, work, out) -> int:
    """Run the lifecycle state machine; returns an exit status."""
    from hypothesis import seed as hseed
    from hypothesis.stateful import run_state_machine_as_test

    from nano_sandbox.fuzz.lifecycle import LifecycleMachine, Violation, make_machine

    accept = {x for item in a.accept for x in item.split(",") if x}
    cls = make_machine(runtime, work, n_ids=a.ids, accept=accept)
    counts = {"examples": 0}
    orig_teardown = cls.teardown

    def counting_teardown(self: LifecycleMachine) -> None:
        counts["examples"] += 1
        orig_teardown(self)

    cls.teardown = counting_teardown  # type: ignore[method-assign]
    if a.seed is not None:
        cls = hseed(a.seed)(cls)
    t0 = time.monotonic()
    try:
        run_state_machine_as_test(cls, settings=_settings(a, stateful_step_count=a.steps))
    except Violation as v:
        print(f"\nFAILED after {counts['examples']} example runs ({time.monotonic() - t0:.0f}s): {v}", file=out)
        _write_reproducer(a, v.script, out)
        return EXIT_FAILURE
    except Exception as e:  # noqa: BLE001 - hypothesis' Flaky, errors of our own: report them all
        print(f"\nFAILED after {counts['examples']} example runs: {type(e).__name__}: {e}", file=out)
        if cls.last_failure is not None:
            print(f"\nlast violation seen:\n{cls.last_failure}", file=out)
            _write_reproducer(a, cls.last_failure.script, out)
        return EXIT_FAILURE
    print(f"passed: {a.examples} examples requested, {counts['examples']} run, up to {a.steps} steps each, "
          f"{a.ids} ids ({time.monotonic() - t0:.0f}s)", file=out)
    if not a.quiet:
        print("operations (exit 0 / failed): " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(cls.stats.items())),
              file=out)
    return EXIT_OK


def run_configs(a: argparse.Namespace, runtime, work, out) -> int:
    """Run the config-document fuzzer; returns an exit status."""
    from hypothesis import given
    from hypothesis import seed as hseed

    from nano_sandbox.fuzz import StateValidator, base_config
    from nano_sandbox.fuzz.configs import ConfigViolation, check_create, config_cases

    base = base_config()
    base["process"]["args"] = ["sleep", "1000"]
    if runtime.cgroups_parent is not None:
        base["linux"]["cgroupsPath"] = f"{runtime.cgroups_parent}/cfg"
    validator = StateValidator()
    counts = {"created": 0, "refused": 0}

    @_settings(a)
    @given(config_cases(base))
    def fuzz(case):
        n = counts["created"] + counts["refused"]
        if runtime.cgroups_parent is not None and case.config is not None and "linux" in case.config \
                and isinstance(case.config["linux"], dict):
            case.config["linux"]["cgroupsPath"] = f"{runtime.cgroups_parent}/fz{runtime.token}-cfg{n}"
        counts[check_create(runtime, work, case, n, validator=validator)] += 1

    if a.seed is not None:
        fuzz = hseed(a.seed)(fuzz)
    t0 = time.monotonic()
    try:
        fuzz()
    except ConfigViolation as v:
        print(f"\nFAILED: {v}", file=out)
        _write_reproducer(a, str(v).split("reproducer (sh):\n", 1)[-1], out)
        return EXIT_FAILURE
    print(f"passed: {counts['created'] + counts['refused']} configs ({counts['created']} created, "
          f"{counts['refused']} refused) in {time.monotonic() - t0:.0f}s", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None, out=None) -> int:
    """Entry point; ``argv`` without the program name. Returns the exit status."""
    out = out or sys.stdout
    a = parse_args(argv)
    if a.list_deviations:
        require_hypothesis()
        from nano_sandbox.fuzz.lifecycle import DEVIATIONS

        for name, text in DEVIATIONS.items():
            print(f"{name}: {text}", file=out)
        return EXIT_OK
    try:
        require_hypothesis()
    except FuzzSetupError as e:
        print(f"nano_sandbox.fuzz: {e}", file=sys.stderr)
        return EXIT_USAGE
    if os.geteuid() != 0:
        print("nano_sandbox.fuzz: needs root (it creates real containers)", file=sys.stderr)
        return EXIT_USAGE
    from nano_sandbox.fuzz import Runtime, Workdir

    work = None
    runtime = None
    try:
        work = Workdir(keep=a.keep)
        runtime = Runtime(a.runtime, a.root or work.root, mountns=a.mountns)
        if not a.quiet:
            print(f"fuzzing {runtime.version} ({runtime.path}) mode={a.mode} mountns={runtime.mountns} "
                  f"root={runtime.root} cgroupsPath={runtime.cgroups_path('<id>') or '(runtime default)'} "
                  f"work={work.path}", file=out)
        runtime.preflight(work)
        if a.mode == "lifecycle":
            return run_lifecycle(a, runtime, work, out)
        return run_configs(a, runtime, work, out)
    except Skip as e:
        print(f"skipped: {e}", file=out)
        return EXIT_SKIPPED
    except (FuzzSetupError, ValueError) as e:
        print(f"nano_sandbox.fuzz: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if runtime is not None:
            for cid in runtime.container_dirs():
                runtime("delete", "--force", cid)
            left = runtime.remove_cgroup_parents()
            if left:
                print(f"warning: cgroup parents still hold children: {left}", file=sys.stderr)
        if work is not None:
            work.close()
            if a.keep:
                print(f"kept {work.path}", file=out)


if __name__ == "__main__":
    sys.exit(main())
