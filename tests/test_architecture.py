"""The stages import one way (docs/architecture.md): no import circle, no module imports a
command, and no stage imports a later one except the upward imports listed below, which
are the known debt (the list must shrink, never grow: a new upward import fails here, and
so does a listed one that is gone, so that the list stays true)."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("blocks", "search_spaces", "nas")
COMMANDS = ("run", "train", "export", "report", "promote", "inspect", "doctor", "zero_cost",
            "calibrate", "effects", "studies", "verify")
STAGES = ("blocks", "search_spaces", "nas", "nas.training", "nas.search", "nas.promotion",
          "nas.analysis")  # then the commands; "nas": the study config and the shared modules
KNOWN_UPWARD: set[tuple[str, str]] = set()  # none left: keep it so
# imports of the project's own modules inside functions: only where the module imported
# brings a heavy or optional dependency (Triton, Ray, pandas, SciPy) that the importer does
# not always need; lower this number when one goes, never raise it
LAZY_IMPORTS_AT_MOST = 39


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for f in (REPO / package).rglob("*.py"):
            rel = f.relative_to(REPO).with_suffix("")
            out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return out


def imports() -> set[tuple[str, str]]:
    """(importer, imported) of every import of the project's modules, inside functions too."""
    mods, edges = modules(), set()
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".")
                if node.level:
                    base = base[: len(base) - node.level + is_package]
                prefix = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                wanted = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges.add((name, target))  # (a module's own packages are not imports)
    return edges


def stage(module: str) -> int:
    if module.removeprefix("nas.") in COMMANDS:
        return len(STAGES)
    return max(i for i, s in enumerate(STAGES) if module == s or module.startswith(s + "."))


def test_no_import_circle():
    graph: dict[str, set[str]] = {}
    for a, b in imports():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]) \
                if nxt in path else f"import circle through {nxt}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_module_imports_a_command():
    into_commands = {(a, b) for a, b in imports() if b.removeprefix("nas.") in COMMANDS}
    assert not into_commands, f"library code lives in these commands: {sorted(into_commands)}"
    # tests and benchmarks run a command through its main() only: nothing else lives there
    for path in [*(REPO / "tests").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").removeprefix("nas.") in COMMANDS:
                assert [a.name for a in node.names] == ["main"], f"{path.name} imports {node.module}'s library code"
    for name in COMMANDS:  # each command is there, and is a command
        assert "def main(" in (REPO / "nas" / f"{name}.py").read_text(), name


def test_stages_import_only_earlier_stages_but_for_the_known_debt():
    upward = {(a, b) for a, b in imports() if stage(b) > stage(a)}
    assert upward - KNOWN_UPWARD == set(), "new upward imports (docs/architecture.md)"
    assert KNOWN_UPWARD - upward == set(), "gone from the code: remove them from KNOWN_UPWARD"


def test_imports_of_our_modules_sit_at_the_top_but_for_heavy_ones():
    lazy = []
    for name, path in modules().items():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy += [(name, n.lineno) for n in ast.walk(fn) if isinstance(n, ast.ImportFrom)
                         and (n.level or (n.module or "").split(".")[0] in PACKAGES)]
    lazy = sorted(set(lazy))
    assert len(lazy) <= LAZY_IMPORTS_AT_MOST, f"{len(lazy)} imports inside functions: {lazy}"
