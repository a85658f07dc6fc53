"""The shape of `mcp_anything/`: no import cycles, layers import only downwards, no overlong modules.

The import graph has an edge for every `import` statement: at module level, inside a function (a
lazy import is still a dependency, and hiding a cycle in a function is still a cycle), and under
`if TYPE_CHECKING:` (two modules naming each other's types know each other: a type-only cycle is
the same tangle, only postponed). So the graph has no runtime cycles, and no others either.
`from package import name` makes an edge to the submodule when `name` is one, else to the package.
Importing a submodule also runs its package's `__init__`; that implicit edge is left out, because
a package face re-exporting its children is the one cycle the layout allows.

The layers are those of the module map in docs/architecture.md; a module belongs to the layer of the
longest prefix in `LAYERS` that names it (a package, or a module), and every module must belong to one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mcp_anything"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _dependencies(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in MODULES else base)
    return {target for target in targets if target in MODULES and target != name}


_FOUNDATION = frozenset({"leaf", "config", "shaping", "utilities"})

LAYERS: dict[str, tuple[str, ...]] = {
    # Import nothing from the project.
    "leaf": ("", "identity", "logs", "breaker", "metrics", "outcome"),
    "config": ("config",),
    "shaping": ("shaping",),
    # Shared by several layers above; they use config (and `tools` uses shaping), nothing higher.
    "utilities": (
        "tools",
        "http_client",
        "scripting",
        "lua",
        "js",
        "script_warnings",
        "shared_store",
        "origins",
        "ratelimit",
        "tracing",
    ),
    "openapi": ("openapi",),
    "inbound": ("inbound",),
    "outbound": ("outbound",),
    "authz": ("authz",),
    "discovery": ("discovery",),
    "server": ("server",),
    "upstream": ("upstream",),
    "app": ("app",),
    "entry": ("cli", "__main__", "workers", "report", "demo"),
}

MAY_IMPORT: dict[str, frozenset[str]] = {
    "leaf": frozenset(),
    "config": frozenset({"leaf"}),
    "shaping": frozenset({"leaf", "config"}),
    "utilities": frozenset({"leaf", "config", "shaping"}),
    # The four strategy layers know nothing of each other.
    "openapi": _FOUNDATION,
    "inbound": _FOUNDATION,
    "outbound": _FOUNDATION,
    "authz": _FOUNDATION,
    "discovery": _FOUNDATION | {"openapi"},
    # The MCP side reaches an upstream only through `server.group.Caller`: no outbound, no upstream.
    "server": _FOUNDATION | {"openapi", "inbound", "authz", "discovery"},
    "upstream": _FOUNDATION | {"outbound", "server"},
    "app": _FOUNDATION | {"openapi", "inbound", "outbound", "authz", "discovery", "server", "upstream"},
    "entry": frozenset(LAYERS),
}


def _layer(name: str) -> str | None:
    """The layer of the longest `LAYERS` prefix naming `name` or a package holding it."""
    relative = name.removeprefix("mcp_anything").removeprefix(".")
    matches = [
        (len(prefix), layer)
        for layer, prefixes in LAYERS.items()
        for prefix in prefixes
        if relative == prefix or (prefix and relative.startswith(prefix + "."))
    ]
    return max(matches)[1] if matches else None


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name in sorted(graph):
        layer = _layer(name)
        if layer is None:
            found.append(f"{name} is in no layer (add it to LAYERS and to the module map in docs/architecture.md)")
            continue
        for target in sorted(graph[name]):
            target_layer = _layer(target)
            if target_layer is not None and target_layer != layer and target_layer not in MAY_IMPORT[layer]:
                found.append(f"{name} ({layer}) imports {target} ({target_layer})")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle for each strongly connected group of modules (Tarjan), as a path that closes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_path_through(graph, group) for group in groups]


def _path_through(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A cycle inside `group` starting at its first module, found breadth-first."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    next_frontier.append(target)
        frontier = next_frontier
    return group


def test_the_import_graph_has_no_cycles() -> None:
    graph = {name: _dependencies(name, path) for name, path in MODULES.items()}
    cycles = [" -> ".join(cycle) for cycle in _cycles(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_sees_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"} - {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def test_layers_import_only_what_they_may() -> None:
    graph = {name: _dependencies(name, path) for name, path in MODULES.items()}
    violations = _layer_violations(graph)
    assert violations == [], "layer rules broken:\n" + "\n".join(violations)


def test_the_layer_check_sees_upward_imports_and_unplaced_modules() -> None:
    graph = {
        "mcp_anything.config.root": {"mcp_anything.server.handler"},
        "mcp_anything.server.handler": {"mcp_anything.upstream", "mcp_anything.config"},
        "mcp_anything.upstream": {"mcp_anything.server.results"},
        "mcp_anything.server.results": set(),
        "mcp_anything.newcomer": set(),
    }
    assert _layer_violations(graph) == [
        "mcp_anything.config.root (config) imports mcp_anything.server.handler (server)",
        "mcp_anything.newcomer is in no layer (add it to LAYERS and to the module map in docs/architecture.md)",
        "mcp_anything.server.handler (server) imports mcp_anything.upstream (upstream)",
    ]


def test_every_layer_may_import_only_known_layers() -> None:
    assert set(MAY_IMPORT) == set(LAYERS)
    assert all(allowed <= set(LAYERS) for allowed in MAY_IMPORT.values())


def test_modules_stay_short_unless_their_docstring_says_why() -> None:
    long = []
    for name, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and f"over {MAX_LINES} lines" not in docstring.lower():
            long.append(f"{name}: {lines} lines")
    assert long == [], (
        f"modules over {MAX_LINES} lines without a reason (`over {MAX_LINES} lines` in the docstring):\n"
        + "\n".join(long)
    )


def test_the_module_map_names_every_module() -> None:
    """docs/architecture.md gives every module its line, so a newcomer's map is never out of date."""
    documented = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [
        str(path.relative_to(PACKAGE))
        for path in MODULES.values()
        if f"`{path.relative_to(PACKAGE).as_posix()}`" not in documented
    ]
    assert not missing, f"add a line for each to the module map in docs/architecture.md: {missing}"
