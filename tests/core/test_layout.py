"""The shape of `core/`: domain packages, no import cycle between modules, no file past 500 lines."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
FOUNDATION = {"__init__.py", "settings.py", "assets.py", "system.py", "samples.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in CORE.rglob("*.py")}


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> modules it imports anywhere in its body (lazy imports inside functions count too)."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from core.data import store` names a submodule; `from core.data import load_file` the package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rpartition(".")[0]
                if t in mods and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph[n]):
            if colour[m] == GREY:
                return stack[stack.index(m):] + [m]
            if colour[m] == WHITE and (found := visit(m)):
                return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_lazy_imports_and_submodules():
    graph = import_graph(modules())
    assert "core.data.store" in graph["core.data.loading"]  # a lazy import inside a function
    assert "core.data.types" in graph["core.data.formats"]
    assert "core.settings" in graph["core.expr.program"]


def test_no_import_cycle_inside_core():
    cycle = find_cycle(import_graph(modules()))
    assert cycle is None, " -> ".join(cycle)


def test_core_top_level_is_the_foundation_and_packages():
    files = {p.name for p in CORE.iterdir() if p.is_file() and p.suffix == ".py"}
    assert files <= FOUNDATION, sorted(files - FOUNDATION)
    packages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert {"expr", "tensors", "tokenizers", "data", "nlp", "training"} <= packages


def test_no_file_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for folder in ("core", "components", "pages")
            for p in (ROOT / folder).rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def test_pages_and_components_import_packages_not_their_private_modules():
    private = set()
    for folder in ("pages", "components"):
        for p in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core."):
                    parts = node.module.split(".")
                    # core.<package>.<module> is private to the package (core.training keeps its
                    # submodules public: config, curves, estimate, export, predict are its documented parts)
                    if len(parts) > 2 and parts[1] != "training":
                        private.add(f"{p.name}: {node.module}")
    assert not private, sorted(private)


def test_no_package_exports_a_name_that_shadows_its_own_submodule():
    """`from core.tokenizers import compare` must mean one thing: a re-exported function named like a
    submodule makes `from package import submodule` return the function instead."""
    import importlib

    clashes = []
    for init in CORE.rglob("__init__.py"):
        pkg = module_name(init)
        mod = importlib.import_module(pkg)
        for sub in init.parent.glob("*.py"):
            name = sub.stem
            if name != "__init__" and name in getattr(mod, "__all__", ()):
                clashes.append(f"{pkg}.{name}")
    assert not clashes, clashes
