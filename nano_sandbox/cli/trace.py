"""``nk-runtime trace [--format text|json] CONTAINER_ID``: print a container's journal (see
:mod:`nano_sandbox.explain.journal`): every transition, kernel action and init step it went
through, in lifecycle order (each transition, its kernel actions, each action's init steps), with
when it began (ms after the first entry), how long it took, under which ``nk-runtime`` verb, and
whether it failed.

Text, one line per entry: transitions flush left, their kernel actions indented, the steps the
container init reported indented twice; a failed entry is marked ``✗`` with its error::

        at ms    took ms  verb     what
        0.000    102.028  create   create: creating -> created
        0.153     46.191  create     validate_bundle
       87.061      0.758  create       create namespaces

``--format json`` prints the entries as one JSON array (the journal's fields: ``t``, ``ns``,
``verb``, ``kind``, ``name``, ``ok``, ``error``), in the same order. Read-only: takes no lock.
"""

from __future__ import annotations

from nano_sandbox.cli import _args

_INDENT = {"transition": "", "action": "  ", "step": "    "}


def format_text(entries: list[dict]) -> str:
    """Return the text timeline of ``entries`` (in :func:`~nano_sandbox.explain.journal.timeline`
    order): a header line, then one line per entry, its time relative to the earliest entry."""
    t0 = min((e.get("t", 0) for e in entries), default=0)
    width = max([len(str(e.get("verb", ""))) for e in entries] + [4])
    lines = [f"{'at ms':>11}  {'took ms':>9}  {'verb':<{width}}  what"]
    for e in entries:
        kind = e.get("kind", "")
        what = _INDENT.get(kind, "  ") + str(e.get("name", ""))
        if not e.get("ok", True):
            what += f"  ✗ {e.get('error', 'failed')}"
        at = (e.get("t", 0) - t0) / 1e6
        took = e.get("ns", 0) / 1e6
        lines.append(f"{at:>11.3f}  {took:>9.3f}  {str(e.get('verb', '')):<{width}}  {what}")
    return "\n".join(lines) + "\n"


def state_dir_of(root: str, cid: str) -> str:
    """Return the state directory of container ``cid``.

    Lean on purpose: ``nano_sandbox.state.store`` (and msgspec) is imported only to word the
    error for an invalid id.

    Raises:
        errors.InvalidArgument: invalid id (the store's wording).
        errors.ContainerNotFound: no such container.
    """
    import os

    from nano_sandbox import errors

    if cid and "/" not in cid and cid not in (".", "..") and os.path.isfile(os.path.join(root, cid, "state.json")):
        return os.path.join(root, cid)
    from nano_sandbox.state import store

    store.validate_id(cid)
    d = store.state_dir(cid=cid, root=root)  # a long id maps to a shortened name
    if os.path.isfile(os.path.join(d, "state.json")):
        return d
    raise errors.ContainerNotFound(cid)


def run(g, argv: list[str]) -> int:
    p = _args.parser("trace", "Print the journal of a container's transitions, kernel actions and init steps.")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text", help="text timeline (default) or a JSON array")
    _args.add_id(p)
    a = _args.parse(p, argv)
    from nano_sandbox.explain import journal

    d = state_dir_of(g.root, a.id)
    entries = journal.timeline(journal.read(d))
    if a.format == "json":
        import json

        _args.out(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    else:
        _args.out(format_text(entries))
    return 0
