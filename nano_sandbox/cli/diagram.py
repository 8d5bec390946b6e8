"""``nk-runtime diagram [--format mermaid|dot|svg|png] [--output FILE] [CONTAINER_ID]``: the
lifecycle state machine as a diagram, drawn from the statechart that runs containers (see
:mod:`nano_sandbox.explain.diagram`).

Without ``--output`` the diagram goes to stdout (Mermaid by default). With a container id, its
current state (derived from kernel facts, as ``state`` reports it) and the state it came from are
highlighted. ``--write-statecharts`` regenerates the checked-in ``statecharts/lifecycle.mmd``,
``.dot`` and ``.svg`` beside ``lifecycle.toml``. svg and png need Graphviz's ``dot``.
"""

from __future__ import annotations

import os
import sys

from nano_sandbox.cli import _args

_EXT_FORMATS = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}


def highlight_of(root: str, cid: str) -> tuple[str, str | None]:
    """Return ``(current, previous)`` states of container ``cid`` for highlighting: the status
    derived from kernel facts, and the status before it. When the kernel says the container
    stopped but no operation has recorded it yet, the previous state is the stored status.

    Raises:
        errors.InvalidArgument: invalid id.
        errors.ContainerNotFound: no such container.
    """
    from nano_sandbox.state import store

    store.validate_id(cid)
    st = store.load(root, cid)
    current = store.derive_status(root, st)
    if current != st.status:
        previous = st.status
    else:
        previous = st.previous_status or None
    return current, previous if previous != current else None


def run(g, argv: list[str]) -> int:
    p = _args.parser(
        "diagram",
        "Print the lifecycle state machine as a diagram (Mermaid by default); with a container id, "
        "highlight its current and previous state.",
    )
    p.add_argument("--format", "-f", choices=("mermaid", "dot", "svg", "png"), default=None,
                   help="mermaid (default), dot source, or svg/png rendered by Graphviz's dot")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout (format from its extension unless --format)")
    p.add_argument("--write-statecharts", action="store_true",
                   help="regenerate statecharts/lifecycle.mmd, .dot and .svg beside lifecycle.toml")
    p.add_argument("id", metavar="CONTAINER_ID", nargs="?", help="highlight this container's state")
    a = _args.parse(p, argv)
    from nano_sandbox import errors
    from nano_sandbox.explain import diagram

    if a.write_statecharts:
        if a.id or a.output or a.format:
            raise _args.UsageError("diagram: --write-statecharts takes no other option or argument")
        for path in diagram.write_statecharts():
            _args.out(path + "\n")
        return 0
    fmt = a.format
    if fmt is None and a.output:
        fmt = _EXT_FORMATS.get(os.path.splitext(a.output)[1].lower())
    fmt = fmt or "mermaid"
    status = previous = None
    if a.id is not None:
        status, previous = highlight_of(g.root, a.id)
    data = diagram.diagram(fmt, status, previous)
    if a.output:
        try:
            with open(a.output, "wb") as f:
                f.write(data)
        except OSError as e:
            raise errors.HostError(f"cannot write {a.output}: {e.strerror}") from e
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0
