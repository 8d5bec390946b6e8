"""``nk-runtime list [-q] [--format table|json]``: list containers as runc does."""

from __future__ import annotations

from nano_sandbox.cli import _args


def run(g, argv: list[str]) -> int:
    p = _args.parser("list", "List containers.")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the ids")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    a = _args.parse(p, argv)
    from nano_sandbox.lifecycle import ops

    rows = ops.list_all(g.root)
    if a.quiet:
        _args.out("".join(st.id + "\n" for st, _ in rows))
        return 0
    if a.format == "json":
        import msgspec

        docs = [
            {"ociVersion": st.oci_version, "id": st.id, "pid": st.pid if status != "stopped" else 0, "status": status,
             "bundle": st.bundle, "rootfs": st.rootfs, "created": st.created, "annotations": st.annotations, "owner": "root"}
            for st, status in rows
        ]
        _args.out(msgspec.json.encode(docs).decode() + "\n")
        return 0
    lines = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for st, status in rows:
        lines.append((st.id, str(st.pid if status != "stopped" else 0), status, st.bundle, st.created, "root"))
    widths = [max(len(r[i]) for r in lines) for i in range(5)]
    text = "".join("   ".join(r[i].ljust(widths[i]) for i in range(5)) + "   " + r[5] + "\n" for r in lines)
    _args.out(text)
    return 0
