"""Distiller-style compression schedules: reading and checking the YAML file.

One concept: the schedule file and what it means (:class:`Schedule`, :class:`Policy` (defined in
:mod:`pa_ci.prune.policy`), :func:`parse_schedule`, :func:`load_schedule`, the LR schedulers).
Not an equation of the paper: next to the paper's global magnitude pruner (Eq. 2-4,
:mod:`pa_ci.prune.magnitude`), pa-ci reads the compression schedules of Intel's Distiller
(``docs-src/docs/schedule.md``; specs/pruning_peers_research.md §2.1-§2.2). The pruners are
:mod:`pa_ci.prune.pruners`; :func:`pa_ci.prune.schedule_run.run_schedule` runs a schedule with
SPSA fine-tuning between pruning events. The file format::

    version: 1
    pruners:
      p1:
        class: SensitivityPruner          # threshold = s x std of the tensor (std of its
        sensitivities:                    # first pruning, as Distiller caches it)
          'dec.gru.W_hh': 0.6
          '*': 0.3                        # every other matrix weight
      p2:
        class: AutomatedGradualPruner     # Zhu & Gupta (2017): cubic ramp initial -> final
        initial_sparsity: 0.05
        final_sparsity: 0.70
        weights: [enc.gru.W_ih, enc.gru.W_hh]
    lr_schedulers:                        # scale SPSA's step gain a (optional)
      decay: {class: ExponentialLR, gamma: 0.95}
    policies:
      - pruner: {instance_name: p1}
        starting_epoch: 0
        ending_epoch: 10                  # exclusive: prunes at 0, 2, 4, 6, 8
        frequency: 2
      - pruner: {instance_name: p2}
        epochs: [1, 3, 5]                 # or an explicit list
      - lr_scheduler: {instance_name: decay}
        starting_epoch: 0
        ending_epoch: 12
    pa_ci:                                # pa-ci's own section (optional; the CLI overrides it)
      iterations_per_epoch: 100           # an "epoch" is this many SPSA iterations
      epochs: 12                          # default: the last pruning epoch + 1

Semantics (Distiller's, except where marked):

* A policy fires on ``range(starting_epoch, ending_epoch, frequency)`` (``ending_epoch``
  exclusive) or on the listed ``epochs``; pruners fire at the *start* of an epoch, in file order,
  then the epoch's SPSA iterations train every weight that is not pruned. Masks only grow: a
  pruned weight stays exactly 0 for the rest of the run.
* ``SensitivityPruner``: keep |w| > s x std(w), std with ddof = 1 (``torch.Tensor.std``), taken
  the first time the tensor is pruned and reused afterwards
  (:func:`pa_ci.prune.sensitivity.propose_sensitivities` derives s from a sensitivity analysis).
* ``SparsityLevelParameterPruner``: prune round(level x n) entries of smallest |w| (pa-ci: Python
  ``round`` and ties broken by index as in :mod:`pa_ci.prune.magnitude`; Distiller takes ``int`` and may
  over-prune ties).
* ``AutomatedGradualPruner``: at the policy's event t, level s_t = s_f + (s_i - s_f)(1 - (t -
  t_0)/span)^3 with t_0 the first and t_0 + span the last event of the policy, so s_f is reached
  exactly at the last event (Zhu & Gupta 2017, Eq. 1; Distiller's ``AgpPruningRate``).
* ``MagnitudeParameterPruner``: keep |w| > threshold.
* ``'*'`` in ``sensitivities``/``levels``/``thresholds`` is the value for every matrix weight not
  listed (pa-ci: never biases or the codebook, the paper prunes weights only). Biases may be named
  explicitly; the codebook may not.
* LR schedulers multiply SPSA's step gain a (the learning rate of SPSA, Eq. 7) by the factor
  PyTorch's scheduler would give after the number of its policy epochs that have ended.
* pa-ci refuses what Distiller skipped silently: unknown keys, unknown tensor names, unknown
  instance names, ``frequency: 0``, ``ending_epoch <= starting_epoch``. Every error is one line
  naming the file and line.

Safety: the file is read by :mod:`pa_ci.yaml_subset` (no object construction, no tags, no
aliases) and classes come from the explicit registries :data:`~pa_ci.prune.pruners.PRUNERS` and
:data:`LR_SCHEDULERS`, never from names looked up in a namespace.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ScheduleError, YamlError  # noqa: F401 - raised here, defined in errors
from ..codec.layout import Layout
from ..train.spsa import MAX_ITERATIONS
from ..validate import is_finite_real, is_int
from ..yaml_subset import YamlList, YamlMap, loads
from .policy import Policy
from .pruners import (PRUNERS, _UNSUPPORTED_PRUNERS, AutomatedGradualPruner, MagnitudeParameterPruner,
                      SensitivityPruner, SparsityLevelParameterPruner, _Pruner)

__all__ = ["ScheduleError", "Policy", "Schedule", "LR_SCHEDULERS", "load_schedule",
           "parse_schedule", "DEFAULT_ITERATIONS_PER_EPOCH"]


#: Largest epoch number a schedule may name (and most epochs a run may have): a bound against
#: typos such as 10**12 that would run until killed.
MAX_EPOCHS = 100_000

#: SPSA iterations per schedule "epoch" when neither the file nor the CLI sets it.
DEFAULT_ITERATIONS_PER_EPOCH = 100


class _Where:
    """Builds ``FILE:LINE: message`` errors."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def error(self, line: int | None, message: str) -> ScheduleError:
        prefix = ":".join(str(p) for p in (self.path, line) if p is not None)
        return ScheduleError(f"{prefix}: {message}" if prefix else message)


def _line(node: Any, key: Any) -> int | None:
    if isinstance(node, YamlMap):
        return node.key_lines.get(key, node.line)
    if isinstance(node, YamlList):
        return node.item_lines[key] if 0 <= key < len(node.item_lines) else node.line
    return None


def _check_keys(node: YamlMap, allowed: Sequence[str], required: Sequence[str], what: str,
                where: _Where) -> None:
    for key in node:
        if key not in allowed:
            raise where.error(_line(node, key), f"unknown key {key!r} in {what}; expected "
                              f"{', '.join(allowed)}")
    for key in required:
        if key not in node:
            raise where.error(node.line, f"{what} has no {key!r}")


# ----------------------------------------------------------------------------- pruners' arguments
def _tensor_names(layout: Layout, kinds: Sequence[str] = ("weight",)) -> list[str]:
    return [t.name for t in layout if t.kind in kinds]


def _check_tensors(names: Sequence[str], lines: Sequence[int | None], layout: Layout,
                   owner: str, where: _Where) -> None:
    """Unknown tensor names are an error (Distiller skipped them silently)."""
    unknown = [(n, ln) for n, ln in zip(names, lines) if n not in layout]
    if unknown:
        listed = ", ".join(repr(n) for n, _ in unknown)
        raise where.error(unknown[0][1], f"{owner} names tensor{'s' if len(unknown) > 1 else ''} "
                          f"{listed} that the FRAE does not have; its tensors: "
                          f"{', '.join(_tensor_names(layout, ('weight', 'bias')))}")
    for n, ln in zip(names, lines):
        if layout[n].kind == "codebook":
            raise where.error(ln, f"{owner}: the codebook cannot be pruned (it is the vector "
                              "quantizer's table); name matrix weights or biases")


def _per_tensor_values(node: YamlMap, key: str, layout: Layout, owner: str, where: _Where,
                       check: Callable[[Any], bool], expected: str) -> dict[str, float]:
    """A ``{tensor: value, '*': default}`` map -> explicit values for every tensor it covers."""
    values = node[key]
    if not isinstance(values, YamlMap) or not values:
        raise where.error(_line(node, key), f"{owner}: {key!r} must map tensor names to {expected}")
    for t, v in values.items():
        if not isinstance(t, str) or not check(v):
            raise where.error(_line(values, t), f"{owner}: {key} of {t!r} is {v!r}; expected {expected}")
    named = [t for t in values if t != "*"]
    _check_tensors(named, [_line(values, t) for t in named], layout, owner, where)
    out = {t: float(values[t]) for t in named}
    if "*" in values:
        for t in _tensor_names(layout):
            out.setdefault(t, float(values["*"]))
    return {t.name: out[t.name] for t in layout if t.name in out}   # layout order


def _sensitivity_pruner(name: str, node: YamlMap, layout: Layout, where: _Where) -> SensitivityPruner:
    sensitivities = _per_tensor_values(node, "sensitivities", layout, f"pruner {name!r}", where,
                                       lambda v: is_finite_real(v) and v >= 0, "a number >= 0")
    return SensitivityPruner(name, sensitivities)


def _level_pruner(name: str, node: YamlMap, layout: Layout,
                  where: _Where) -> SparsityLevelParameterPruner:
    levels = _per_tensor_values(node, "levels", layout, f"pruner {name!r}", where,
                                lambda v: is_finite_real(v) and 0 <= v <= 1, "a sparsity in [0, 1]")
    return SparsityLevelParameterPruner(name, levels)


def _agp_pruner(name: str, node: YamlMap, layout: Layout, where: _Where) -> AutomatedGradualPruner:
    owner = f"pruner {name!r}"
    for key in ("initial_sparsity", "final_sparsity"):
        v = node[key]
        if not (is_finite_real(v) and 0 <= v <= 1):
            raise where.error(_line(node, key), f"{owner}: {key} is {v!r}; expected a number in [0, 1]")
    if not node["final_sparsity"] > node["initial_sparsity"]:
        raise where.error(_line(node, "final_sparsity"),
                          f"{owner}: final_sparsity must be larger than initial_sparsity")
    weights = node["weights"]
    if isinstance(weights, str):
        weights = YamlList([weights])
        weights.line, weights.item_lines = _line(node, "weights"), [_line(node, "weights")]
    if not isinstance(weights, YamlList) or not weights or not all(isinstance(w, str) for w in weights):
        raise where.error(_line(node, "weights"), f"{owner}: weights must be a list of tensor names")
    if len(set(weights)) != len(weights):
        raise where.error(_line(node, "weights"), f"{owner}: weights lists a tensor twice")
    _check_tensors(list(weights), list(weights.item_lines), layout, owner, where)
    return AutomatedGradualPruner(name, node["initial_sparsity"], node["final_sparsity"], list(weights))


def _magnitude_pruner(name: str, node: YamlMap, layout: Layout,
                      where: _Where) -> MagnitudeParameterPruner:
    thresholds = _per_tensor_values(node, "thresholds", layout, f"pruner {name!r}", where,
                                    lambda v: is_finite_real(v) and v >= 0, "a number >= 0")
    return MagnitudeParameterPruner(name, thresholds)


#: How each class of :data:`~pa_ci.prune.pruners.PRUNERS` reads its arguments from the YAML.
_READERS: dict[type[_Pruner], Callable[[str, YamlMap, Layout, _Where], _Pruner]] = {
    SensitivityPruner: _sensitivity_pruner, SparsityLevelParameterPruner: _level_pruner,
    AutomatedGradualPruner: _agp_pruner, MagnitudeParameterPruner: _magnitude_pruner}


# ----------------------------------------------------------------------------- LR schedulers
@dataclass(frozen=True)
class _LrScheduler:
    """A PyTorch LR scheduler as a factor on SPSA's step gain a after ``steps`` epoch ends."""

    name: str
    class_name: str
    gamma: float
    step_size: int = 1
    milestones: tuple[int, ...] = ()

    def factor(self, steps: int) -> float:
        if self.class_name == "ExponentialLR":
            return self.gamma ** steps
        if self.class_name == "StepLR":
            return self.gamma ** (steps // self.step_size)
        return self.gamma ** sum(1 for m in self.milestones if m <= steps)   # MultiStepLR


#: LR schedulers a schedule may name, with their arguments (PyTorch's meaning, applied to a).
LR_SCHEDULERS: dict[str, tuple[str, ...]] = {
    "ExponentialLR": ("gamma",),
    "StepLR": ("step_size", "gamma"),
    "MultiStepLR": ("milestones", "gamma"),
}


def _lr_scheduler(name: str, node: YamlMap, where: _Where) -> _LrScheduler:
    cls = node["class"]
    gamma = node["gamma"]
    if not (is_finite_real(gamma) and gamma > 0):
        raise where.error(_line(node, "gamma"), f"lr_scheduler {name!r}: gamma is {gamma!r}; "
                          "expected a number > 0")
    kwargs: dict[str, Any] = {}
    if cls == "StepLR":
        s = node["step_size"]
        if not (is_int(s) and s >= 1):
            raise where.error(_line(node, "step_size"), f"lr_scheduler {name!r}: step_size is {s!r}; "
                              "expected an integer >= 1")
        kwargs["step_size"] = s
    if cls == "MultiStepLR":
        m = node["milestones"]
        if not (isinstance(m, list) and m and all(is_int(x) and x >= 1 for x in m)):
            raise where.error(_line(node, "milestones"), f"lr_scheduler {name!r}: milestones must "
                              "be a list of integers >= 1")
        kwargs["milestones"] = tuple(sorted(m))
    return _LrScheduler(name, cls, float(gamma), **kwargs)


# ----------------------------------------------------------------------------- the schedule
@dataclass
class Schedule:
    """A parsed compression schedule, checked against one FRAE layout."""

    path: str | None
    text: str
    pruners: dict[str, _Pruner]
    lr_schedulers: dict[str, _LrScheduler]
    policies: list[Policy]
    iterations_per_epoch: int | None = None
    epochs: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def pruning_epochs(self) -> list[int]:
        """Sorted epochs at which at least one pruner fires."""
        return sorted({e for p in self.policies if p.kind == "pruner" for e in p.epochs})

    def events(self, epoch: int) -> list[Policy]:
        """The pruner policies that fire at the start of ``epoch``, in file order."""
        return [p for p in self.policies if p.kind == "pruner" and epoch in p.epochs]

    def lr_factor(self, epoch: int) -> float:
        """Factor on SPSA's a during ``epoch``: each LR policy's epochs that ended before it."""
        f = 1.0
        for p in self.policies:
            if p.kind == "lr_scheduler":
                f *= self.lr_schedulers[p.instance].factor(sum(1 for e in p.epochs if e < epoch))
        return f

    def reset(self) -> None:
        """Forget pruner state (the sensitivity pruner's cached std): a run starts afresh."""
        for p in self.pruners.values():
            p.reset()

    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


_TOP_KEYS = ("version", "pruners", "lr_schedulers", "policies", "pa_ci")
_DISTILLER_UNSUPPORTED = ("regularizers", "quantizers", "extensions")
_POLICY_KINDS = ("pruner", "lr_scheduler", "regularizer", "quantizer", "extension")
_POLICY_KEYS = _POLICY_KINDS + ("starting_epoch", "ending_epoch", "frequency", "epochs")


def parse_schedule(text: str, layout: Layout, path: str | os.PathLike | None = None) -> Schedule:
    """Parse and check a schedule against ``layout``; errors name the file and line."""
    where = _Where(None if path is None else str(path))
    try:
        doc = loads(text, path=where.path)
    except YamlError as exc:
        raise ScheduleError(str(exc)) from None
    if not isinstance(doc, YamlMap):
        raise where.error(1, "a compression schedule is a mapping with 'pruners' and 'policies'")
    for key in doc:
        if key in _DISTILLER_UNSUPPORTED:
            raise where.error(_line(doc, key), f"Distiller's {key!r} are not supported by pa-ci "
                              "(it runs pruners and LR schedulers only)")
    _check_keys(doc, _TOP_KEYS, ("pruners", "policies"), "the schedule", where)
    if "version" in doc and doc["version"] != 1:
        raise where.error(_line(doc, "version"), f"version {doc['version']!r}; expected 1 "
                          "(Distiller's only schedule version)")

    pruners: dict[str, _Pruner] = {}
    node = doc["pruners"]
    if not isinstance(node, YamlMap) or not node:
        raise where.error(_line(doc, "pruners"), "'pruners' must map instance names to pruners")
    for name, spec in node.items():
        if not isinstance(spec, YamlMap):
            raise where.error(_line(node, name), f"pruner {name!r} must be a mapping with 'class'")
        cls_name = spec.get("class")
        if cls_name is None:
            raise where.error(spec.line, f"pruner {name!r} has no 'class'")
        if not isinstance(cls_name, str):
            raise where.error(_line(spec, "class"), f"pruner {name!r}: class is {cls_name!r}; "
                              f"expected one of {', '.join(PRUNERS)}")
        if cls_name not in PRUNERS:
            why = ("is a Distiller pruner pa-ci does not implement" if cls_name in _UNSUPPORTED_PRUNERS
                   else "is not a pruner class")
            raise where.error(_line(spec, "class"), f"pruner {name!r}: {cls_name!r} {why}; "
                              f"expected one of {', '.join(PRUNERS)}")
        cls = PRUNERS[cls_name]
        _check_keys(spec, ("class",) + cls.arguments, cls.arguments, f"pruner {name!r} ({cls_name})",
                    where)
        pruners[str(name)] = _READERS[cls](str(name), spec, layout, where)

    lr: dict[str, _LrScheduler] = {}
    node = doc.get("lr_schedulers")
    if node is not None:
        if not isinstance(node, YamlMap):
            raise where.error(_line(doc, "lr_schedulers"), "'lr_schedulers' must map instance names "
                              "to schedulers")
        for name, spec in node.items():
            if not isinstance(spec, YamlMap) or not isinstance(spec.get("class"), str) \
                    or spec["class"] not in LR_SCHEDULERS:
                got = spec.get("class") if isinstance(spec, YamlMap) else spec
                raise where.error(_line(node, name), f"lr_scheduler {name!r}: class {got!r}; expected "
                                  f"one of {', '.join(LR_SCHEDULERS)}")
            args = LR_SCHEDULERS[spec["class"]]
            _check_keys(spec, ("class",) + args, args, f"lr_scheduler {name!r}", where)
            lr[str(name)] = _lr_scheduler(str(name), spec, where)

    policies = _policies(doc, pruners, lr, where)
    ipe, epochs = _pa_ci_section(doc, where)
    last = max(e for p in policies if p.kind == "pruner" for e in p.epochs)
    if epochs is not None and epochs <= last:
        raise where.error(_line(doc["pa_ci"], "epochs"), f"epochs is {epochs} but a pruner fires "
                          f"at epoch {last}; expected more than {last}")
    used = {p.instance for p in policies}
    warnings = [f"{where.path or 'schedule'}:{_line(doc['pruners' if n in pruners else 'lr_schedulers'], n)}: "
                f"{n!r} is defined but no policy uses it" for n in list(pruners) + list(lr)
                if n not in used]
    return Schedule(where.path, text, pruners, lr, policies, ipe, epochs, warnings)


def _epoch_int(node: YamlMap, key: str, minimum: int, owner: str, where: _Where) -> int:
    v = node[key]
    top = MAX_ITERATIONS if key == "iterations_per_epoch" else MAX_EPOCHS
    if not (is_int(v) and minimum <= v <= top):
        raise where.error(_line(node, key), f"{owner}: {key} is {v!r}; expected an integer in "
                                            f"{minimum}..{top}")
    return v


def _policies(doc: YamlMap, pruners: dict, lr: dict, where: _Where) -> list[Policy]:
    node = doc["policies"]
    if not isinstance(node, YamlList) or not node:
        raise where.error(_line(doc, "policies"), "'policies' must be a list of policies")
    out: list[Policy] = []
    for i, item in enumerate(node):
        line = _line(node, i)
        owner = f"policy {i + 1}"
        if not isinstance(item, YamlMap):
            raise where.error(line, f"{owner} must be a mapping (pruner: {{instance_name: ...}}, "
                              "starting_epoch, ending_epoch, frequency)")
        _check_keys(item, _POLICY_KEYS, (), owner, where)
        kinds = [k for k in _POLICY_KINDS if k in item]
        if len(kinds) != 1:
            raise where.error(line, f"{owner} must name exactly one of pruner, lr_scheduler "
                              f"(it names {', '.join(kinds) or 'none'})")
        kind = kinds[0]
        if kind not in ("pruner", "lr_scheduler"):
            raise where.error(_line(item, kind), f"{owner}: {kind} policies are not supported by pa-ci")
        ref = item[kind]
        if not isinstance(ref, YamlMap):
            raise where.error(_line(item, kind), f"{owner}: {kind} must be a mapping with instance_name")
        if "args" in ref:
            raise where.error(_line(ref, "args"), f"{owner}: policy args (Distiller's mask fine "
                              "control) are not supported; pa-ci keeps pruned weights at exactly 0")
        _check_keys(ref, ("instance_name",), ("instance_name",), f"{owner} {kind}", where)
        name = ref["instance_name"]
        defined = pruners if kind == "pruner" else lr
        if not isinstance(name, str) or name not in defined:
            section = "pruners" if kind == "pruner" else "lr_schedulers"
            raise where.error(_line(ref, "instance_name"), f"{owner}: {kind} {name!r} is not defined "
                              f"under {section} (defined: {', '.join(map(repr, defined)) or 'none'})")
        if "epochs" in item:
            for key in ("starting_epoch", "ending_epoch", "frequency"):
                if key in item:
                    raise where.error(_line(item, key), f"{owner}: {key} cannot be combined with epochs")
            ep = item["epochs"]
            if not (isinstance(ep, list) and ep and all(is_int(e) and 0 <= e <= MAX_EPOCHS for e in ep)):
                raise where.error(_line(item, "epochs"), f"{owner}: epochs must be a non-empty list "
                                  "of integers >= 0")
            if len(set(ep)) != len(ep):
                raise where.error(_line(item, "epochs"), f"{owner}: epochs lists an epoch twice")
            out.append(Policy(kind, str(name), tuple(sorted(ep)), line))
            continue
        for key in ("starting_epoch", "ending_epoch"):
            if key not in item:
                raise where.error(line, f"{owner} has no {key!r} (or give epochs: [...])")
        start = _epoch_int(item, "starting_epoch", 0, owner, where)
        end = _epoch_int(item, "ending_epoch", 0, owner, where)
        if end <= start:
            raise where.error(_line(item, "ending_epoch"), f"{owner}: ending_epoch {end} <= "
                              f"starting_epoch {start}; ending_epoch is exclusive, so it must be larger")
        freq = _epoch_int(item, "frequency", 1, owner, where) if "frequency" in item else 1
        out.append(Policy(kind, str(name), tuple(range(start, end, freq)), line, start, end, freq))
    if not any(p.kind == "pruner" for p in out):
        raise where.error(_line(doc, "policies"), "no policy runs a pruner")
    return out


def _pa_ci_section(doc: YamlMap, where: _Where) -> tuple[int | None, int | None]:
    node = doc.get("pa_ci")
    if node is None:
        return None, None
    if not isinstance(node, YamlMap):
        raise where.error(_line(doc, "pa_ci"), "'pa_ci' must be a mapping (iterations_per_epoch, epochs)")
    _check_keys(node, ("iterations_per_epoch", "epochs"), (), "pa_ci", where)
    ipe = _epoch_int(node, "iterations_per_epoch", 0, "pa_ci", where) \
        if "iterations_per_epoch" in node else None
    epochs = _epoch_int(node, "epochs", 1, "pa_ci", where) if "epochs" in node else None
    return ipe, epochs


def load_schedule(path: str | os.PathLike, layout: Layout) -> Schedule:
    """Read and check a schedule file (see the module docstring for the format)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScheduleError(f"{p}: cannot read the schedule ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScheduleError(f"{p}:{line}: byte {exc.start} is not valid UTF-8; expected a UTF-8 "
                            "YAML schedule (re-save the file as UTF-8)") from None
    return parse_schedule(text, layout, p)
