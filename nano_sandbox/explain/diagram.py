"""State diagrams of the lifecycle, generated from the statechart that runs containers.

The diagram is drawn by ``transitions``' own diagram support: :func:`build` decodes
``statecharts/lifecycle.toml`` with :func:`~nano_sandbox.lifecycle.chart.load_chart` (the very
function the runtime uses) and adds its states and transitions to a
``transitions.extensions.diagrams.GraphMachine``, which turns them into nodes and edges:

* every state is a node; the initial state gets an entry arrow (``[*] --> creating``) and the
  final state (``deleted``) an exit arrow to ``[*]`` (Mermaid) or to a filled end mark (dot);
* every transition is an edge labelled with its trigger (several triggers between the same two
  states share one edge, ``a | b``); a guarded transition shows its guard, ``start
  [has_process]``; an internal transition (no ``dest``: ``kill``, ``exec``, ``update``) is a
  self-loop labelled ``kill [internal]``, consistently in both formats;
* kernel actions are not drawn (``nk-runtime -E`` and ``nk-runtime trace`` show them).

Two outputs: Mermaid (``GraphMachine``'s ``graph_engine="mermaid"``, needs no binary) and
Graphviz dot source, rendered to SVG or PNG by the ``dot`` program (Debian package
``graphviz``). For dot, ``transitions`` would need the ``graphviz`` Python package, which is not
a dependency of nano-sandbox; :class:`_DotGraph` reuses ``transitions``' Graphviz graph class (its
node, edge and style logic) and replaces only the few lines that serialise the graph with a
small writer, so the dot source depends on nothing optional and is the same on every machine.

Highlighting (``nk-runtime diagram ID``): the container's current state gets ``GraphMachine``'s
``active`` style and the state it came from the ``previous`` style (and, in dot, the edge between
them too): Mermaid ``classDef s_active`` / ``s_previous`` with ``Class <state> s_...`` lines, dot
node attributes (red/salmon, double border; blue/azure).

This module is imported only by the ``diagram`` verb and the tests: ``GraphMachine`` stays out of
the runtime path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from nano_sandbox import errors
from nano_sandbox.lifecycle.chart import Chart, chart_path, load_chart

#: The diagram's title (Mermaid front matter, dot graph label).
TITLE = "nano-sandbox container lifecycle"

#: Output formats: the two sources, and what ``dot`` renders.
SOURCE_FORMATS = ("mermaid", "dot")
RENDERED_FORMATS = ("svg", "png")
FORMATS = SOURCE_FORMATS + RENDERED_FORMATS

#: File names written by :func:`write_statecharts`, beside ``lifecycle.toml``.
STATECHART_FILES = {"mermaid": "lifecycle.mmd", "dot": "lifecycle.dot", "svg": "lifecycle.svg"}

_MISSING_DOT = (
    'the Graphviz "dot" program is not installed (needed for {what}); install it with '
    "apt-get install graphviz, or use --format mermaid or --format dot"
)


# ---- the two graph back-ends --------------------------------------------------------------------
def _quote(s: str) -> str:
    """A dot ID or attribute value, always double-quoted; backslash escapes such as ``\\l``
    (left-justified line end, used by transitions' labels) are kept as dot escapes."""
    return '"' + str(s).replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(d: dict) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in d.items())


class _Digraph:
    """The part of ``graphviz.Digraph`` that transitions' Graphviz graph class uses: ``node``,
    ``edge``, ``graph_attr`` and ``source``. Output is deterministic (insertion order)."""

    def __init__(self, name: str, node_attr: dict, edge_attr: dict, graph_attr: dict) -> None:
        self.name = name
        self.node_attr = dict(node_attr)
        self.edge_attr = dict(edge_attr)
        self.graph_attr = dict(graph_attr)
        self.body: list[str] = []

    def node(self, name: str, label: str | None = None, **attrs: str) -> None:
        if label is not None:
            attrs = {"label": label, **attrs}
        self.body.append(f"\t{_quote(name)} [{_attrs(attrs)}]" if attrs else f"\t{_quote(name)}")

    def edge(self, tail: str, head: str, label: str | None = None, **attrs: str) -> None:
        if label is not None:
            attrs = {"label": label, **attrs}
        line = f"\t{_quote(tail)} -> {_quote(head)}"
        self.body.append(f"{line} [{_attrs(attrs)}]" if attrs else line)

    @property
    def source(self) -> str:
        head = [f"digraph {_quote(self.name)} {{"]
        for kind, attrs in (("graph", self.graph_attr), ("node", self.node_attr), ("edge", self.edge_attr)):
            if attrs:
                head.append(f"\t{kind} [{_attrs(attrs)}]")
        return "\n".join(head + self.body + ["}"]) + "\n"


def _graph_classes():
    """Return the two graph classes (imported here: transitions' diagram modules are only for
    this verb)."""
    from transitions.extensions import diagrams_graphviz, diagrams_mermaid

    class _MermaidGraph(diagrams_mermaid.Graph):
        """transitions' Mermaid graph, with a YAML front matter title, final states marked
        (``deleted --> [*]``), the ``class`` keyword in lower case and no trailing blanks (the
        README embeds it verbatim)."""

        def get_graph(self, title=None, roi_state=None):
            source = super().get_graph(title="title: " + (title or self.machine.title)).source
            # "Class" (transitions' spelling) -> "class": Mermaid's keyword as documented.
            lines = [re.sub(r"^(\s*)Class ", r"\1class ", line.rstrip()) for line in source.splitlines()]
            finals = [name for name, s in self.machine.states.items() if getattr(s, "final", False)]
            lines += [f"  {name} --> [*]" for name in finals]
            return diagrams_mermaid.DigraphMock("\n".join(lines) + "\n")

    class _DotGraph(diagrams_graphviz.Graph):
        """transitions' Graphviz graph (nodes, edges, styles) serialised by :class:`_Digraph`
        instead of the optional ``graphviz`` package; adds an entry mark for the initial state and
        an end mark for each final state."""

        def generate(self):  # the base class refuses to run without the graphviz package
            pass

        def get_graph(self, title=None, roi_state=None):
            m = self.machine
            title = title or m.title
            styles = m.style_attributes
            g = _Digraph(
                title,
                node_attr=styles["node"]["default"],
                edge_attr=styles["edge"]["default"],
                # "directed"/"strict" are graphviz.Digraph constructor options, not dot attributes.
                graph_attr={**styles["graph"]["default"], "rankdir": m.machine_attributes.get("rankdir", "LR"),
                            "label": title},
            )
            states, transitions = self._get_elements()
            g.node("__start", label="", shape="point", width="0.15", style="filled", fillcolor="black")
            self._add_nodes(states, g)
            for name, s in m.states.items():
                if getattr(s, "final", False):
                    g.node(f"__end_{name}", label="", shape="doublecircle", width="0.12", style="filled",
                           fillcolor="black")
            g.edge("__start", m.initial)
            self._add_edges(transitions, g)
            for name, s in m.states.items():
                if getattr(s, "final", False):
                    g.edge(name, f"__end_{name}")
            return g

    return _MermaidGraph, _DotGraph


class _Model:
    """The (inert) model the diagram machine holds: it only carries the highlighted state."""


def build(chart: Chart | None = None, engine: str = "mermaid", title: str = TITLE):
    """Build a ``GraphMachine`` with the chart's states and transitions (no callbacks: nothing
    can run on it).

    Args:
        chart: the chart (default: the packaged ``statecharts/lifecycle.toml``).
        engine: ``"mermaid"`` or ``"dot"``.
        title: the diagram's title.

    Returns:
        the machine; :func:`source` draws it.
    """
    from transitions.extensions.diagrams import GraphMachine

    chart = chart or load_chart()
    mermaid_cls, dot_cls = _graph_classes()

    class LifecycleGraphMachine(GraphMachine):
        def _init_graphviz_engine(self, graph_engine):
            return dot_cls if graph_engine == "dot" else mermaid_cls

    m = LifecycleGraphMachine(
        model=None,
        states=[{"name": name, "final": s.final} for name, s in chart.states.items()],
        initial=chart.initial,
        auto_transitions=False,
        send_event=True,
        model_attribute="status",
        title=title,
        show_conditions=True,
        graph_engine=engine,
    )
    for t in chart.transitions:
        # Guards by name (a string condition is only resolved if the trigger fires, which never
        # happens here); dest None keeps the state: an internal transition.
        m.add_transition(t.trigger, list(t.source), t.dest, conditions=[t.guard] if t.guard else None)
    return m


def source(fmt: str = "mermaid", status: str | None = None, previous: str | None = None,
           chart: Chart | None = None, title: str = TITLE) -> str:
    """Return the diagram source, Mermaid (``fmt="mermaid"``) or Graphviz dot (``fmt="dot"``).

    Args:
        status: the state to highlight as current (``active`` style), or None for none.
        previous: the state to highlight as the previous one (``previous`` style; in dot the
            edge ``previous -> status`` too), or None.
        chart: the chart (default: the packaged one).

    Raises:
        ValueError: unknown ``fmt``, or a highlighted state the chart does not declare.
    """
    if fmt not in SOURCE_FORMATS:
        raise ValueError(f"unknown diagram source format {fmt!r} (expected mermaid or dot)")
    chart = chart or load_chart()
    for s in (status, previous):
        if s is not None and s not in chart.states:
            raise ValueError(f"state {s!r} is not in the statechart")
    m = build(chart, engine=fmt, title=title)
    model = _Model()
    m.add_model(model, initial=status or chart.initial)
    graph = m.model_graphs[id(model)]
    graph.reset_styling()  # add_model marks the model's state active: start from a plain diagram
    if previous and status and previous != status:
        graph.set_previous_transition(previous, status)
    elif previous:
        graph.set_node_style(previous, "previous")
    if status:
        graph.set_node_style(status, "active")
    return model.get_graph().source


# ---- rendering with dot -----------------------------------------------------------------------
def dot_program() -> str | None:
    """Return the path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def dot_version() -> str | None:
    """Return ``dot``'s version line (``dot - graphviz version 2.43.0 (0)``), or None."""
    prog = dot_program()
    if prog is None:
        return None
    r = subprocess.run([prog, "-V"], capture_output=True, text=True)
    return (r.stderr or r.stdout).strip() or None


def render(dot_source: str, fmt: str) -> bytes:
    """Render dot source with ``dot -T<fmt>`` (``svg`` or ``png``) and return the output.

    Raises:
        errors.HostError: ``dot`` is not installed (the message names the program and the
            Debian package, graphviz), or it failed (its stderr).
        ValueError: ``fmt`` is not svg or png.
    """
    if fmt not in RENDERED_FORMATS:
        raise ValueError(f"dot renders svg or png, not {fmt!r}")
    prog = dot_program()
    if prog is None:
        raise errors.HostError(_MISSING_DOT.format(what=f"--format {fmt}"))
    r = subprocess.run([prog, f"-T{fmt}"], input=dot_source.encode(), capture_output=True)
    if r.returncode != 0:
        raise errors.HostError(f"dot -T{fmt} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def diagram(fmt: str = "mermaid", status: str | None = None, previous: str | None = None) -> bytes:
    """Return the diagram in ``fmt`` (``mermaid``, ``dot``, ``svg`` or ``png``) as bytes.

    Raises:
        errors.HostError: svg/png without ``dot`` (see :func:`render`).
        ValueError: unknown format or state.
    """
    if fmt in SOURCE_FORMATS:
        return source(fmt, status, previous).encode()
    if fmt not in RENDERED_FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return render(source("dot", status, previous), fmt)


def statecharts_dir() -> str:
    """The folder holding ``lifecycle.toml``: where the generated diagrams are checked in."""
    return os.path.dirname(chart_path())


def write_statecharts(directory: str | None = None) -> list[str]:
    """Regenerate the checked-in diagrams (``nk-runtime diagram --write-statecharts``):
    ``lifecycle.mmd``, ``lifecycle.dot`` and ``lifecycle.svg`` (rendered from that dot source)
    beside ``lifecycle.toml``. Nothing is written unless all three can be.

    Returns:
        the paths written.

    Raises:
        errors.HostError: ``dot`` is missing (needed for the SVG), or a file cannot be written.
    """
    directory = directory or statecharts_dir()
    if dot_program() is None:
        raise errors.HostError(_MISSING_DOT.format(what="statecharts/lifecycle.svg"))
    dot_src = source("dot")
    contents = {
        STATECHART_FILES["mermaid"]: source("mermaid").encode(),
        STATECHART_FILES["dot"]: dot_src.encode(),
        STATECHART_FILES["svg"]: render(dot_src, "svg"),
    }
    written = []
    for name, data in contents.items():
        path = os.path.join(directory, name)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise errors.HostError(f"cannot write {path}: {e.strerror}") from e
        written.append(path)
    return written
