"""The README's two set-up commands stay true: the test command is exactly what CI runs, and the
main command runs a bundle that exists, with explain mode on."""

from __future__ import annotations

import re

from conftest import REPO


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", quick, re.S)]


def test_readme_has_exactly_two_setup_commands():
    cmds = _commands()
    assert len(cmds) == 2
    assert all("\n" not in c for c in cmds)


def test_ci_runs_the_readme_test_command():
    test_cmd = _commands()[1]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert test_cmd in ci_lines
    assert test_cmd == "bash .ci/install --test && .venv/bin/python -m pytest"


def test_main_command_runs_the_example_bundle_with_explain():
    main = _commands()[0]
    assert main.startswith("bash .ci/install && ")
    assert " -E run " in main
    bundle = re.search(r"--bundle (\S+)", main).group(1)
    assert (REPO / bundle / "config.json").is_file()
