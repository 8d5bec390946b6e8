"""``nk-runtime ps [--format|-f table|json] CONTAINER_ID [ps options...]``: the processes of a
container (runc's ``ps``).

The processes are those in the container's cgroup (and its descendants), as host pids.
``--format json`` prints them as a JSON array (``[1234,1240]``; containerd parses it). The table
format runs the host's ``ps`` with the given options (default ``-ef``) and prints its header and
the rows whose PID column is one of the container's pids, as runc does.
"""

from __future__ import annotations

from nano_sandbox import errors
from nano_sandbox.cli import _args


def pid_column(header: str) -> int:
    """Index of the ``PID`` column in a ``ps`` header line.

    Raises:
        errors.NkError: no PID column (``couldn't find PID field in ps output``, runc's text).
    """
    fields = header.split()
    if "PID" not in fields:
        raise errors.NkError("couldn't find PID field in ps output")
    return fields.index("PID")


def filter_table(output: str, pids: list[int]) -> str:
    """Keep the header and the rows of ``ps`` ``output`` whose PID is in ``pids``."""
    lines = output.split("\n")
    idx = pid_column(lines[0])
    want = set(pids)
    keep = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > idx:
            try:
                if int(fields[idx]) in want:
                    keep.append(line)
            except ValueError:
                continue
    return "\n".join(keep) + "\n"


def run(g, argv: list[str]) -> int:
    import argparse

    p = _args.parser("ps", "List the processes running in a container.",
                     usage="nk-runtime ps [--format|-f table|json] CONTAINER_ID [ps options]")
    p.add_argument("--format", "-f", default="table", help="table (default) or json")
    _args.add_id(p)
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="options passed to ps(1) (default -ef)")
    a = _args.parse(p, argv)
    if a.format not in ("table", "json"):
        raise errors.InvalidArgument("invalid format option")
    from nano_sandbox.cgroups.manager import Manager
    from nano_sandbox.state import store

    store.validate_id(a.id)
    st = store.load(g.root, a.id)
    status = store.derive_status(g.root, st)
    if status == "stopped":
        raise errors.InvalidState("ps", a.id, status, ["created", "running", "paused"])
    pids = Manager(st.cgroup_paths, st.cgroup_created).pids()
    if a.format == "json":
        _args.out("[" + ",".join(map(str, pids)) + "]\n")
        return 0
    import subprocess

    ps_args = list(a.ps_args)
    if ps_args and ps_args[0] == "--":
        ps_args = ps_args[1:]
    try:
        r = subprocess.run(["ps", *(ps_args or ["-ef"])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as e:
        raise errors.HostError(f"cannot run ps: {e.strerror}") from None
    text = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise errors.NkError(f"ps {' '.join(ps_args or ['-ef'])}: exit status {r.returncode}: {text.strip()}")
    _args.out(filter_table(text, pids))
    return 0
