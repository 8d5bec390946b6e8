"""The lifecycle fuzzer (nano_sandbox.fuzz.lifecycle) against the real nk-runtime binary.

Random sequences of create/start/state/kill/delete/pause/resume/exec/run on up to three container
ids, each step checked against the OCI lifecycle model, with host invariants (no process,
cgroup, state directory or mount of a deleted container left). CI runs a fixed derandomized set
plus a few random examples; ``NK_HYPOTHESIS_PROFILE=long`` runs many more. The example database
is off (nothing is written under .hypothesis/). A failure prints a shell script reproducing it.

The same machine runs against runc or crun: ``python -m nano_sandbox.fuzz --runtime PATH``
(docs/conformance.md).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("jsonschema")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from nano_sandbox.fuzz import Runtime, Workdir  # noqa: E402
from nano_sandbox.fuzz.lifecycle import Box, LifecycleMachine, make_machine  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.slow]

LONG = os.environ.get("NK_HYPOTHESIS_PROFILE") == "long"
NK = shutil.which("nk-runtime", path=str(Path(sys.executable).parent)) or shutil.which("nk-runtime")


@pytest.fixture
def machine(busybox_rootfs, tmp_path):
    """A LifecycleMachine class bound to nk-runtime with a private root under tmp_path."""
    if NK is None:
        pytest.fail("nk-runtime is not installed next to this Python (pip install -e .)")
    work = Workdir(base=str(tmp_path))
    rt = Runtime(NK, work.root)
    assert rt.kind == "nk-runtime"
    yield make_machine(rt, work, n_ids=3)
    for cid in rt.container_dirs():
        rt("delete", "--force", cid)
    work.close()


def _settings(examples: int, derandomize: bool) -> settings:
    return settings(
        max_examples=settings.default.max_examples if LONG else examples,
        stateful_step_count=30 if LONG else 12,
        derandomize=derandomize,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def test_lifecycle_fixed_examples(machine):
    run_state_machine_as_test(machine, settings=_settings(8, derandomize=True))


def test_lifecycle_random_examples(machine):
    run_state_machine_as_test(machine, settings=_settings(3, derandomize=False))


# -- the model itself, without a runtime ------------------------------------------------------------


def test_box_model_allows_stopped_only_when_the_process_may_end():
    b = Box("x")
    b.reset(None, None)
    assert b.possible() == {"created"}
    b.status, b.may_stop = "running", True
    assert b.possible() == {"running", "stopped"}
    b.stopped()
    assert b.possible() == {"stopped"} and not b.may_stop
    b.untracked = True
    assert b.possible() == {"created", "running", "paused", "stopped"}
    b.gone()
    assert not b.exists and not b.untracked


def test_unknown_deviation_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown deviation"):
        make_machine(object(), object(), accept={"no-such-deviation"})  # type: ignore[arg-type]


def test_machine_class_is_a_rule_based_state_machine():
    assert issubclass(LifecycleMachine, __import__("hypothesis.stateful").stateful.RuleBasedStateMachine)


def test_nk_runtime_fuzz_verb_runs_the_fuzzer():
    import subprocess

    r = subprocess.run([sys.executable, "-m", "nano_sandbox", "fuzz", "--runtime", "runc", "--list-deviations"],
                       capture_output=True, text=True, timeout=60)
    assert "internal error" not in r.stderr
    assert r.returncode == 0, r.stderr
    assert "delete-created" in r.stdout
