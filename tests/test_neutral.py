"""The pipeline and the methods import no deep-learning framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FRAMEWORKS = ("torch", "tensorflow", "jax", "keras")


def run_without_frameworks(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh Python whose imports of torch, TensorFlow, JAX and
    Keras fail, then check that none of them got imported."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {FRAMEWORKS!r}:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        + body
        + f"assert not set({FRAMEWORKS!r}) & set(sys.modules)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)


def test_methods_and_pipeline_import_without_any_framework():
    out = run_without_frameworks(
        "import eli5_nn, eli5_nn.methods, eli5_nn.explain, eli5_nn.modalities.image\n"
        "assert eli5_nn.registration.register_all() == []\n"
        "print(sorted(eli5_nn.METHODS))\n"
    )
    assert out.returncode == 0, out.stderr
    assert "grad-cam" in out.stdout


# -- the layers: one import direction, no circle, frameworks only where allowed ------------------
#
# The graph is built from the source with ``ast``: every ``import`` / ``from ... import`` at module
# level and inside functions (``if TYPE_CHECKING:`` blocks left out), relative imports resolved, and
# ``importlib.import_module("<literal>")``. An edge goes to the module an import names: for
# ``from P import n``, to ``P.n`` when that is a module, else to ``P`` (a package means its
# ``__init__``). Python also runs the ``__init__`` of every package above an imported module on the
# way; those implicit runs are not edges (counting them would make every module import
# ``eli5_nn/__init__``). Hence a package's ``__init__`` importing its own submodules (how
# re-exports work) can only close a circle when one of those submodules explicitly imports that
# package (``from .. import name``, ``import eli5_nn``): a real circle, reported like any other.

PACKAGE = Path(__file__).resolve().parents[1] / "eli5_nn"

#: module prefix (whole dotted components) -> rank; the longest matching prefix wins
RANKS = {
    "eli5_nn.errors": 0,
    "eli5_nn.layout": 0,
    "eli5_nn._eli5_keras": 0,  # an import hook that imports nothing of eli5_nn
    "eli5_nn.results": 1,
    "eli5_nn.base": 1,
    "eli5_nn.targets": 2,
    "eli5_nn.arguments": 2,
    "eli5_nn.patches": 2,
    "eli5_nn.modalities": 3,
    "eli5_nn.adapters.base": 3,
    "eli5_nn.formatters": 4,
    "eli5_nn.decomposition": 4,
    "eli5_nn.adapters": 5,
    "eli5_nn.methods": 6,
    "eli5_nn.explain": 7,
    "eli5_nn.pipeline": 7,
    "eli5_nn.compare": 8,
    "eli5_nn.metrics": 8,
    "eli5_nn.training": 8,
    "eli5_nn.datasets": 8,
    "eli5_nn.registration": 9,
    "eli5_nn.cli": 9,
    "eli5_nn.loaders": 9,
    "eli5_nn.demo": 9,
    "eli5_nn.demo_models": 9,
    "eli5_nn.demo_data": 9,
    "eli5_nn.__main__": 9,
    "eli5_nn": 9,  # the package's __init__: an entry point
}

#: modules (and packages) that may import a framework
FRAMEWORK_ALLOWED = (
    "eli5_nn.adapters", "eli5_nn.decomposition", "eli5_nn.training", "eli5_nn.cli",
    "eli5_nn.loaders", "eli5_nn.demo", "eli5_nn.demo_models", "eli5_nn.demo_data",
    "eli5_nn.datasets.sources", "eli5_nn.datasets.ray_engine",  # dataset engines
)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.AST]:
    """Import statements and literal ``import_module`` calls (``if TYPE_CHECKING:`` left out)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                  "import_module", "__import__")):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in module ``name``; relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.Call):
            target = node.args[0].value  # type: ignore[attr-defined]
            if not target.startswith("."):
                found.append((target, node.lineno))
        else:
            assert isinstance(node, ast.ImportFrom)
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                stem = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{stem}.{base}" if base else stem
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """``{module: {imported module of eli5_nn or a framework: first line}}``."""
    modules = _modules(root)
    known = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in _imports(name, path, known):
            top = target.split(".")[0]
            if target in known or top in FRAMEWORKS:
                edges.setdefault(target if target in known else top, line)
        graph[name] = edges
    return graph


def rank(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANKS:
            return RANKS[prefix]
    return None


def _allowed_framework(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in FRAMEWORK_ALLOWED)


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, {}):
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layering_problems(root: Path = PACKAGE) -> list[str]:
    """Every circle, upward import, unranked module and misplaced framework import."""
    graph = import_graph(root)
    problems = [f"import circle: {' <-> '.join(c)}" for c in circles(graph)]
    for module, edges in sorted(graph.items()):
        r = rank(module)
        if r is None:
            problems.append(f"{module} has no rank: add it to RANKS in tests/test_neutral.py")
            continue
        for target, line in edges.items():
            if target.split(".")[0] in FRAMEWORKS:
                if not _allowed_framework(module):
                    problems.append(f"{module}:{line} imports the framework {target}")
                continue
            t = rank(target)
            if t is not None and t > r:
                problems.append(f"{module}:{line} (rank {r}) imports {target} (rank {t})")
    return problems


def test_imports_run_one_way():
    problems = layering_problems()
    assert not problems, "\n".join(problems)


def test_the_layering_check_sees_circles_inside_functions_and_upward_imports(tmp_path):
    pkg = tmp_path / "eli5_nn"
    (pkg / "formatters").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import explain\n")
    (pkg / "results.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import explain\n"
    )
    (pkg / "explain.py").write_text("from .formatters import html\nimport torch\n")
    (pkg / "formatters" / "__init__.py").write_text("from .html import show\n")
    (pkg / "formatters" / "html.py").write_text(
        "def show():\n    from ..explain import run\n    from .. import results\n"
    )
    problems = layering_problems(pkg)
    assert "import circle: eli5_nn.explain <-> eli5_nn.formatters.html" in problems
    assert any("eli5_nn.formatters.html:2 (rank 4) imports eli5_nn.explain (rank 7)" in p
               for p in problems)
    assert "eli5_nn.explain:2 imports the framework torch" in problems
    # re-exports (an __init__ importing its own submodules) and TYPE_CHECKING imports are fine
    assert not any("eli5_nn.results" in p for p in problems), problems
    assert len([p for p in problems if p.startswith("import circle")]) == 1


def test_a_submodule_importing_its_own_package_back_is_a_circle(tmp_path):
    pkg = tmp_path / "eli5_nn"
    (pkg / "formatters").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "formatters" / "__init__.py").write_text("from .html import show\nSCALE = 1\n")
    (pkg / "formatters" / "colors.py").write_text("X = 1\n")
    (pkg / "formatters" / "html.py").write_text("from . import colors\n")
    assert layering_problems(pkg) == []
    (pkg / "formatters" / "html.py").write_text("def show():\n    from . import SCALE\n")
    assert layering_problems(pkg) == [
        "import circle: eli5_nn.formatters <-> eli5_nn.formatters.html"
    ]
