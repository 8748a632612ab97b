"""The layout's rules (docs/ARCHITECTURE.rst), checked on the source: layers import only
downwards, only the CLI imports click, Numba kernels are private, and the module paths from
before the subpackages still import."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from pa_ci._compat import OLD_PATHS

PACKAGE = Path(__file__).resolve().parent.parent / "pa_ci"

#: the layers from the bottom up; a module may import its own layer and the ones below
LAYERS = [
    {"errors", "_files", "validate", "progress", "run_folder", "_compat", "yaml_subset", "plots", "rst",
     "__init__"},
    {"chain"}, {"data"}, {"codec"}, {"train"}, {"prune"}, {"experiment"},
    {"api"}, {"cli", "__main__"},
]


def _layer(dotted: str) -> int:
    """Layer of a module given as its path under pa_ci, e.g. 'chain.stoi' or 'cli'."""
    head = dotted.split(".")[0] or "__init__"
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError(f"pa_ci.{dotted} is in no layer of LAYERS: add it")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if "bundled" in parts or "__pycache__" in parts:
            continue
        out.append((".".join(parts), path))
    return out


def _imports(dotted: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module under pa_ci or external top name) of every import, lazy ones too."""
    package = dotted.split(".")[:-1] if not dotted.endswith("__init__") else dotted.split(".")[:-1]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name == "pa_ci" or name.startswith("pa_ci."):
                    found.append((node.lineno, name[len("pa_ci."):] if "." in name else "__init__"))
                else:
                    found.append((node.lineno, "!" + name.split(".")[0]))
                continue
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:   # from . import a, b: modules of that package, or its names
                for alias in node.names:
                    sub = PACKAGE.joinpath(*base, alias.name)
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    found.append((node.lineno, ".".join(base + [alias.name]) if is_module
                                  else ".".join(base) or "__init__"))
            else:
                found.append((node.lineno, target or "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pa_ci."):
                    found.append((node.lineno, alias.name[len("pa_ci."):]))
                else:
                    found.append((node.lineno, "!" + alias.name.split(".")[0]))
    return found


def test_every_module_is_in_a_layer():
    for dotted, _ in _modules():
        _layer(dotted)


def test_layers_import_only_downwards():
    upward = []
    for dotted, path in _modules():
        own = _layer(dotted)
        for line, target in _imports(dotted, path):
            if target.startswith("!") or target in ("", "__init__"):
                continue
            if _layer(target) > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: pa_ci.{dotted} imports pa_ci.{target}")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_only_the_cli_imports_click():
    users = [f"pa_ci.{dotted}" for dotted, path in _modules()
             if any(t == "!click" for _, t in _imports(dotted, path))]
    assert users and all(u.startswith("pa_ci.cli.") for u in users), users


def _is_kernel_decorator(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return any(word in text for word in ("njit", "numba.jit", "vectorize", "guvectorize"))


def test_numba_kernels_are_private():
    public = []
    for dotted, path in _modules():
        for node in ast.parse(path.read_text()).body:   # module level (closures are local names)
            if isinstance(node, ast.FunctionDef) and any(map(_is_kernel_decorator, node.decorator_list)):
                if not node.name.startswith("_"):
                    public.append(f"pa_ci.{dotted}.{node.name}")
    assert not public, f"compiled kernels must be private (a typed public wrapper calls them): {public}"


def test_the_import_checker_sees_an_upward_import(tmp_path):
    # the checker itself can fail: a chain module that imports the experiment layer is caught
    fake = tmp_path / "fake.py"
    fake.write_text("from ..experiment.sweep import run_sweep\n")
    assert _imports("chain.fake", fake) == [(1, "experiment.sweep")]
    assert _layer("experiment.sweep") > _layer("chain.fake")


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_still_import(old):
    code = (f"import importlib, importlib.util, sys; m = importlib.import_module({old!r}); "
            "print(type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    target = OLD_PATHS[old]
    if isinstance(target, str):   # the same module object; its own spec (the cache key reads it)
        old_mod, new_mod = importlib.import_module(old), importlib.import_module(target)
        assert old_mod is new_mod
        spec = importlib.util.find_spec(target)
        assert spec.name == target and Path(spec.origin).is_file()


def test_old_names_of_split_modules_are_forwarded():
    from pa_ci.stoi import Reference, ReferenceSet  # noqa: F401 - stoi was split in two
    from pa_ci.frae import Decoder, Encoder, forward  # noqa: F401
    from pa_ci.params import Layout, load_model, save_model  # noqa: F401
    from pa_ci.prune import PruningAwareObjective, check_rate, prune  # noqa: F401
    from pa_ci.data import build_dataset, default_config  # noqa: F401
    with pytest.raises(ImportError):
        from pa_ci.stoi import no_such_name  # noqa: F401


def _cycles_within_packages() -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for dotted, path in _modules():
        package = dotted.rpartition(".")[0]
        if not package:
            continue
        graph.setdefault(dotted, set())
        for _, target in _imports(dotted, path):
            if target.rpartition(".")[0] == package and target != dotted \
                    and not target.endswith("__init__"):
                graph[dotted].add(target)
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycles_inside_a_subpackage():
    # lazy and type-only imports count: a cycle makes the modules one concept in two files
    assert _cycles_within_packages() == []
