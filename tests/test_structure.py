"""The package's shape: no import cycles, a command line that needs no TensorFlow."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ganzoo

PACKAGE = Path(ganzoo.__file__).resolve().parent


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, modules, name=None):
    """The ganzoo modules `path` (module `name`) imports anywhere, function-level imports included."""
    tree = ast.parse(path.read_text())
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from a import b` imports a.b when that is a module, else a.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, paths) - {name} for name, path in paths.items()}


def cycles(graph):
    """Every cycle's modules (strongly connected components of more than one module), by Tarjan."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_among_ganzoo_modules():
    graph = import_graph()
    assert "ganzoo.registry" in graph and graph["ganzoo.cli"]  # the scan sees the package
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_scan_sees_function_level_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from ganzoo.metrics import evaluation\n    import ganzoo.runs\n")
    modules = {"ganzoo.metrics", "ganzoo.metrics.evaluation", "ganzoo.runs"}
    assert imported_modules(source, modules, "ganzoo.mod") == {"ganzoo.metrics.evaluation", "ganzoo.runs"}


def test_help_and_list_import_no_tensorflow():
    code = ("import sys; from ganzoo import cli; cli.main(['list']); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "lsgan" in result.stdout and "Mao et al. 2017" in result.stdout


def test_list_into_a_closed_pipe_prints_no_traceback():
    command = f"{sys.executable} -m ganzoo.cli list | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.stdout.startswith("cgan") and result.stderr == ""


FIRST_IMPORTS = """
import importlib, json, sys, traceback
import numpy, tensorflow, keras  # third-party, loaded once: the check is about ganzoo's own import order
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "ganzoo" or m.startswith("ganzoo.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append([name, traceback.format_exc()[-1500:]])
print(json.dumps(failed))
"""


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    """Import cycles that only run time shows (lazy attributes, import order):
    each module must import on its own, first. One interpreter imports each in
    turn with every ganzoo module forgotten before it (a process per module
    spent two minutes importing TensorFlow 45 times)."""
    names = sorted(import_graph())
    result = subprocess.run([sys.executable, "-c", FIRST_IMPORTS, *names], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert failed == []
