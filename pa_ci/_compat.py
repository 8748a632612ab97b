"""The import paths of pa-ci before its layers became subpackages keep working.

``pa_ci.stoi`` is ``pa_ci.chain.stoi``, ``pa_ci.frae`` is ``pa_ci.codec.frae``, and so on: the
old name is bound to the *same* module object on first import (no copy, so an attribute set
through one name is seen through the other). The old modules that are packages now
(``pa_ci.chain``, ``pa_ci.data``, ``pa_ci.codec``, ``pa_ci.prune``) forward their old names
from the package (:func:`forwarding_getattr`).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

#: old module path -> the module that holds its code now; a tuple where the old module was split
#: (its old path is then a module of its own that forwards each name from the first that has it)
OLD_PATHS: dict[str, str | tuple[str, ...]] = {
    "pa_ci.audio": "pa_ci.chain.audio", "pa_ci.noise": "pa_ci.chain.noise",
    "pa_ci.ace": "pa_ci.chain.ace", "pa_ci.vocoder": "pa_ci.chain.vocoder",
    "pa_ci.stoi": ("pa_ci.chain.stoi", "pa_ci.chain.vstoi"),
    "pa_ci.params": ("pa_ci.codec.layout", "pa_ci.codec.model_file"),
    "pa_ci.frae": ("pa_ci.codec.frae", "pa_ci.codec.stream", "pa_ci.codec._kernels",
                   "pa_ci.codec._exp"),
    "pa_ci.bitstream": "pa_ci.codec.bitstream", "pa_ci.export": "pa_ci.codec.export",
    "pa_ci.firmware": "pa_ci.codec.firmware",
    "pa_ci.objective": "pa_ci.train.objective", "pa_ci.spsa": "pa_ci.train.spsa",
    "pa_ci.training": "pa_ci.train.training",
    "pa_ci.warmstart": ("pa_ci.train.warmstart", "pa_ci.train.bptt", "pa_ci.train.kmeans"),
    "pa_ci.sensitivity": "pa_ci.prune.sensitivity",
    "pa_ci.schedule": ("pa_ci.prune.schedule", "pa_ci.prune.pruners", "pa_ci.prune.schedule_run",
                       "pa_ci.prune.policy"),
    "pa_ci.protocol": "pa_ci.experiment.protocol",
    "pa_ci.sweep": ("pa_ci.experiment.sweep", "pa_ci.experiment.executors",
                    "pa_ci.experiment.ledger"),
}


def _existing(modules: tuple[str, ...]) -> Iterator[ModuleType]:
    """The modules of ``modules`` that exist (a name not written yet is skipped)."""
    for module_name in modules:
        try:
            yield importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise


def _first_with(modules: tuple[str, ...], owner: str, name: str) -> Any:
    """``name`` from the first of ``modules`` that has it; ``__all__``: the names of all."""
    if name == "__all__":   # a star import of a split module: the names of all its parts
        names: list[str] = []
        for module in _existing(modules):
            public = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
            names += [n for n in public if n not in names]
        return names
    for module in _existing(modules):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {owner!r} has no attribute {name!r}")


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module of its new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname not in OLD_PATHS:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        target = OLD_PATHS[spec.name]
        if isinstance(target, tuple):   # a split module: a forwarding module of the old name
            module = ModuleType(spec.name, f"Former module; its names live in {', '.join(target)}.")
            module.__getattr__ = lambda name: _first_with(target, spec.name, name)  # type: ignore
            self._own_spec = None
            return module
        module = importlib.import_module(target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system set __spec__ to the old name's spec: give the module its own back
        # (find_spec of the new name, e.g. for the dataset cache key, reads it)
        if self._own_spec is not None:
            module.__spec__ = self._own_spec


def install() -> None:
    """Put the old-path finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())


def forwarding_getattr(package: str, *modules: str) -> Callable[[str], Any]:
    """A PEP 562 ``__getattr__`` for ``package`` that forwards the names of the old module of
    that name (now ``modules``, tried in order) on first use."""

    folder = Path(importlib.util.find_spec(package).origin).parent

    def __getattr__(name: str) -> Any:
        # ``from pa_ci.codec import bitstream`` asks for the attribute before it imports the
        # submodule: a submodule's name is not forwarded (that would import the old module's
        # code, and what it imports, first)
        if name.startswith("__") or (folder / f"{name}.py").is_file() or (folder / name).is_dir():
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return _first_with(modules, package, name)

    return __getattr__
