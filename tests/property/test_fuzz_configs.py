"""Fuzzed config.json documents fed to ``nk-runtime create`` (nano_sandbox.fuzz.configs).

The base is the example busybox config; hypothesis applies up to three mutations (wrong types,
out-of-range numbers, unknown enum values, relative paths, duplicate namespaces/rlimits,
missing required fields, bad seccomp actions, malformed JSON, and valid changes). For every
document: no traceback or "internal error"; a valid one is created (then force-deleted); an
invalid one is refused with an error naming the JSON path at fault (``config.json: <path>: ...``);
nothing is left behind (state dir, cgroup dir named after the id, process, mount).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("jsonschema")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nano_sandbox.fuzz import Runtime, StateValidator, Workdir, base_config, error_paths  # noqa: E402
from nano_sandbox.fuzz.configs import (  # noqa: E402
    INVALID,
    VALID,
    check_create,
    config_cases,
    container_specs,
    del_path,
    get_path,
    set_path,
)

LONG = os.environ.get("NK_HYPOTHESIS_PROFILE") == "long"
NK = shutil.which("nk-runtime", path=str(Path(sys.executable).parent)) or shutil.which("nk-runtime")


def _base() -> dict:
    cfg = base_config()
    cfg["process"]["args"] = ["sleep", "1000"]
    return cfg


@pytest.mark.root
@pytest.mark.slow
def test_create_handles_fuzzed_configs(busybox_rootfs, tmp_path):
    if NK is None:
        pytest.fail("nk-runtime is not installed next to this Python (pip install -e .)")
    work = Workdir(base=str(tmp_path))
    rt = Runtime(NK, work.root)
    validator = StateValidator()
    seen = {"created": 0, "refused": 0}
    counter = [0]

    @settings(max_examples=settings.default.max_examples if LONG else 25, derandomize=not LONG, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(config_cases(_base()))
    def run(case):
        counter[0] += 1
        seen[check_create(rt, work, case, counter[0], validator=validator)] += 1

    try:
        run()
    finally:
        for cid in rt.container_dirs():
            rt("delete", "--force", cid)
        work.close()
    assert seen["created"] and seen["refused"], seen


# -- the strategies themselves (no root) ---------------------------------------------------------------


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(config_cases(_base()))
def test_cases_are_consistent(case):
    data = case.data()
    if case.raw is None:
        json.loads(data)  # a mutated document is still JSON
    assert not (case.must_refuse and case.must_create)
    if case.must_refuse:
        assert case.allowed_paths  # a refusal always has a path (or the whole document) to name
    for m in case.mutations:
        assert m.kind in (VALID, INVALID, "either")


@settings(max_examples=20, derandomize=True, database=None, deadline=None)
@given(container_specs())
def test_container_specs_make_configs(spec):
    cfg = spec.config(_base(), "/nk-fuzz-x/id")
    assert cfg["process"]["args"] == list(spec.program.args)
    assert cfg["process"]["terminal"] is False
    assert cfg["linux"]["cgroupsPath"] == "/nk-fuzz-x/id"
    if spec.program.exits:
        assert spec.program.code is not None


@given(st.sampled_from(["process.rlimits[0].type", "linux.namespaces[2].type", "root.path"]))
@settings(database=None, derandomize=True)
def test_path_helpers_round_trip(path):
    doc = _base()
    set_path(doc, path, "X")
    assert get_path(doc, path) == "X"
    del_path(doc, path)
    with pytest.raises(KeyError):
        get_path(doc, path)


def test_error_paths_reads_nk_runtime_messages():
    assert error_paths("nk-runtime: config.json: linux.resources.memory.limit: expected int, got str") == [
        "linux.resources.memory.limit"]
    assert error_paths('nk-runtime: config.json: linux.sysctl["a.b"]: bad\nnk-runtime: config.json: hostname: x') == [
        'linux.sysctl["a.b"]', "hostname"]
    assert error_paths("nk-runtime: config.json: invalid JSON: truncated") == [""]
    assert error_paths("nk-runtime: create: mount /x on /y: ENOENT") == []
