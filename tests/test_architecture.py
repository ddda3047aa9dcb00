"""The layout's rules (ARCHITECTURE.md): every import, lazy ones included, points down the layers
or stays inside its own package; no import circle between modules; no oversized module."""
import ast
import pathlib

from tests.conftest import REPO

# Lowest first. A module belongs to the longest prefix that names it.
LAYERS = (
    ("tryon_jax.core",),
    ("tryon_jax.models", "crawler"),
    ("tryon_jax.weights", "configs"),
    ("tryon_jax.metrics", "tryon_jax.person"),  # person: photos -> ACGPN's person inputs
    ("tryon_jax.data", "tryon_datasets"),
    ("tryon_jax.acgpn", "tryon_jax.person.training"),
    ("tryon_jax.serving",),
    ("tryon_jax", "evaluation"),  # entry points: the CLIs, main.py's jobs, the contracts' paths
    ("main",),
)
# Packages of one layer that may import each other's modules (the module graph stays acyclic):
# the TFDS builders decode with data.samples, and data.input_pipeline reads the builders.
SIBLINGS = {("tryon_jax.data", "tryon_datasets"), ("tryon_datasets", "tryon_jax.data")}
MAX_LINES = 400
ROOTS = {"tryon_jax": "tryon_jax", "crawler": "crawler", "configs": "configs", "evaluation": "evaluation",
         "tryon_datasets": "datasets"}


def _modules() -> dict[str, pathlib.Path]:
    out = {"main": REPO / "main.py"}
    for name, folder in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join((name,) + parts)] = path
    return out


def _imports(path: pathlib.Path, modules) -> set[str]:
    """First-party modules imported anywhere in the file (a 'from P import x' counts P.x when
    that is a module, else P)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                found.add(full if full in modules else node.module)
    return {m for m in found if m in modules}


def _owner(module: str) -> tuple[int, str]:
    """(layer index, package prefix) of a module."""
    best = max((p for layer in LAYERS for p in layer if module == p or module.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer), best


def test_imports_point_down_the_layers_without_circles():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    wrong = []
    for m, deps in graph.items():
        layer, package = _owner(m)
        for d in deps:
            d_layer, d_package = _owner(d)
            if d_layer > layer or (d_layer == layer and d_package != package and (package, d_package) not in SIBLINGS):
                wrong.append(f"{m} ({package}) imports {d} ({d_package})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))
    # Depth-first search for a cycle.
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_module_is_oversized():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
