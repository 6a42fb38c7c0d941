"""The library's shape: no import cycle among its modules (function-local imports included, so a
cycle cannot hide inside a function), short functions, and a config that is cheap to build."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
PACKAGE = LIB / "cnnvit"
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The cnnvit modules a file imports anywhere in it. ``from X import a`` depends on module
    ``X.a`` when that is a module, else on ``X`` itself (its namespace must hold ``a``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cnnvit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("cnnvit"):
                target = node.module
            else:
                continue
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                      for a in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        # an import of a package's name means its __init__; of a submodule, that module
        graph[name] = {t for t in _imports(path, set(files)) if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_the_library():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def function_lengths() -> list[tuple[int, str]]:
    """(lines, 'module.function') for every function and method in the library."""
    out = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{_module_name(path)}.{node.name}"))
    return sorted(out, reverse=True)


def test_no_function_is_longer_than_a_screen():
    long = [f"{name} ({n} lines)" for n, name in function_lengths() if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


MAX_LOADER_PARAMETERS = 7  # a loader takes a source (or a few keys), not every key one by one


def test_no_loader_takes_every_key_as_an_argument():
    """Functions that load something (``load*``, ``*_from_config``) take fewer than 8 named
    parameters: the keys travel as one typed object (a DataSource, a Config)."""
    wide = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (node.name.lstrip("_").startswith("load")
                                                      or node.name.endswith("_from_config")):
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - (a.args[:1] and a.args[0].arg == "self")
                if n > MAX_LOADER_PARAMETERS:
                    wide.append(f"{_module_name(path)}.{node.name} ({n})")
    assert not wide, f"loaders with over {MAX_LOADER_PARAMETERS} parameters: {wide}"


@pytest.mark.parametrize("code", [
    "from cnnvit import config; config.build(overrides=['train.epochs=2', 'data.name=cifar10'])",
    "from cnnvit import config\ntry:\n    config.build(overrides=['trian.epochs=2'])\nexcept config.ConfigError:\n    pass",
])
def test_building_and_validating_a_config_imports_no_torch(code):
    check = code + "\nimport sys\nassert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]"
    res = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]


def test_cli_user_error_is_one_line_and_exit_2_before_torch():
    """A misspelt key: one `error:` line naming it, exit code 2, and torch never imported."""
    code = ("import sys\nfrom cnnvit.__main__ import main\nrc = main(['train', '--set', 'trian.epochs=1', "
            "'--out', 'unused'])\nassert 'torch' not in sys.modules\nsys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "trian" in lines[0], lines


def test_a_user_error_in_a_notebook_is_its_message_not_a_traceback():
    """The cell fails (papermill and `make report` see it) and shows one `error:` line."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("from cnnvit import config\nconfig.build(overrides=['trian.x=1'])")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, allow_errors=True, timeout=120).execute()
    (out,) = nb.cells[0].outputs
    assert out["output_type"] == "error" and out["ename"] == "ConfigError"
    assert out["traceback"] == [f"error: {out['evalue']}"] and "trian" in out["evalue"]
