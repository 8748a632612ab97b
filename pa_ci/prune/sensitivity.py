"""Per-tensor pruning sensitivity analysis (Distiller's ``perform_sensitivity_analysis``).

pruning_peers_research.md §2.5: for each weight tensor ALONE, prune it one-shot to each sparsity
level (magnitude pruning, no retraining), score the model, and report one curve per tensor (CSV
and PNG). The curves show which tensors tolerate pruning; :func:`propose_levels` turns them into
per-tensor levels, :func:`propose_sensitivities` into the multipliers ``s`` of Distiller's
``SensitivityPruner`` (prune |w| <= s * std(w), §2.1) and :func:`schedule_yaml` into a
Distiller-format compression schedule. The whole ``pa-ci sensitivity`` workflow on a model file
is :func:`pa_ci.prune.sensitivity_run.run_analysis`.

Pruning a tensor to level ``l`` removes its round(l * n) entries of smallest |w| (Python's
``round``, DECISIONS.md "Pruning"), ties broken by lower index exactly like
:func:`pa_ci.prune.pruned_indices` (paper Eq. 2 restricted to one tensor). Entries that are already
zero count as the smallest, so the masks of one tensor nest as the level grows.

The metric is any "higher is better" scalar of the parameter vector (the pa-ci CLI uses the mean
VSTOI of the decoded patterns, paper §II-C); Distiller's metric is hard-wired to top-1/top-5.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .._files import write_text_atomic
from ..errors import ParameterError
from ..validate import is_int
from ..codec.layout import Layout
from .magnitude import check_rate, n_pruned, pruned_indices

__all__ = ["CSV_HEADER", "MAX_BATCH_ROWS", "SensitivityRow", "level_mask", "sparsity_levels",
           "analyze", "write_csv", "read_csv", "plot", "propose_levels", "proposed_sparsity",
           "propose_for_sparsity", "tensor_std",
           "threshold_mask", "propose_sensitivities", "schedule_yaml"]

#: Header line of the CSV written by :func:`write_csv` (read by name by the acceptance checks).
CSV_HEADER = ("tensor", "sparsity", "metric", "nonzero", "size")
#: At most this many parameter vectors per ``batch_metric`` call.
MAX_BATCH_ROWS = 8
#: Refuse level grids longer than this (a typo such as step 1e-9 would never finish).
MAX_LEVELS = 10_000


@dataclass(frozen=True)
class SensitivityRow:
    """One point of a sensitivity curve: ``tensor`` alone pruned to ``sparsity`` scores ``metric``;
    ``nonzero`` of its ``size`` entries remain."""

    tensor: str
    sparsity: float
    metric: float
    nonzero: int
    size: int


# --------------------------------------------------------------------------- masks and levels
def _theta(theta: np.ndarray, layout: Layout) -> np.ndarray:
    arr = np.asarray(theta)
    if arr.shape != (layout.size,) or arr.dtype.kind not in "fiu":
        raise ParameterError(f"theta has shape {arr.shape} and dtype {arr.dtype}; "
                             f"expected float64 ({layout.size},)")
    return arr


def level_mask(theta: np.ndarray, layout: Layout, name: str, level: float) -> np.ndarray:
    """Keep-mask (bool, ``layout.size``) pruning the round(level * n) smallest-|w| entries of
    tensor ``name`` only (Eq. 2 on one tensor; ties by lower index, zeros first, so masks nest)."""
    spec = layout[name]
    theta = _theta(theta, layout)
    level = check_rate(level)
    eligible = np.zeros(layout.size, dtype=bool)
    eligible[spec.slice] = True
    keep = np.ones(layout.size, dtype=bool)
    keep[pruned_indices(theta, eligible, n_pruned(level, spec.size))] = False
    return keep


def sparsity_levels(start: float, stop: float, step: float) -> list[float]:
    """Levels start, start + step, ... like Distiller's ``--sense-range`` (``np.arange``), except
    that ``stop`` is INCLUDED when it lies on the grid: (0, 0.9, 0.3) -> [0.0, 0.3, 0.6, 0.9]
    (``np.arange`` would stop at 0.6). Values are rounded to 10 decimals (no float drift such as
    0.30000000000000004); all lie in [0, 1]."""
    vals = []
    for what, v in (("start", start), ("stop", stop), ("step", step)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if isinstance(v, bool) or not math.isfinite(f):
            raise ParameterError(f"sparsity range {what} {v!r}: expected a finite number")
        vals.append(f)
    a, b, h = vals
    if not (0.0 <= a <= 1.0 and 0.0 <= b <= 1.0):
        raise ParameterError(f"sparsity range {a:g}..{b:g}: start and stop must lie in [0, 1]")
    if a > b:
        raise ParameterError(f"sparsity range start {a:g} is above stop {b:g}")
    if h <= 0.0:
        raise ParameterError(f"sparsity range step {h:g}: expected a step > 0")
    n = math.floor((b - a) / h + 1e-9)  # the tolerance puts a stop that is on the grid on it
    if n + 1 > MAX_LEVELS:
        raise ParameterError(f"sparsity range {a:g}..{b:g} step {h:g} gives {n + 1} levels; "
                             f"at most {MAX_LEVELS} allowed")
    out = [min(round(a + i * h, 10), 1.0) for i in range(n + 1)]
    return [v for i, v in enumerate(out) if i == 0 or v > out[i - 1]]


# --------------------------------------------------------------------------- the analysis
def _check_levels(levels: Iterable[float]) -> list[float]:
    try:
        lv = [check_rate(v) for v in levels]
    except TypeError:
        raise ParameterError(f"sparsity levels {levels!r}: expected a list of numbers in [0, 1]") from None
    if not lv:
        raise ParameterError("sensitivity analysis needs at least one sparsity level")
    if len(set(lv)) != len(lv):
        dup = sorted({v for v in lv if lv.count(v) > 1})
        raise ParameterError(f"sparsity level {dup[0]:g} is listed twice")
    return lv


def _check_tensors(layout: Layout, tensors: Sequence[str] | str | None) -> list[str]:
    if tensors is None:
        names = [s.name for s in layout.tensors if s.kind == "weight"]
        if not names:
            raise ParameterError("the layout has no weight tensors to analyse")
        return names
    names = [tensors] if isinstance(tensors, str) else list(tensors)
    if not names:
        raise ParameterError("sensitivity analysis needs at least one tensor")
    for n in names:
        layout[n]                      # unknown names: one-line ParameterError listing the tensors
    if len(set(names)) != len(names):
        raise ParameterError(f"tensor {next(n for n in names if names.count(n) > 1)!r} is listed twice")
    return names


def _finite(value: object, name: str, level: float) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        f = float("nan")
    if isinstance(value, (bool, np.bool_)) or not math.isfinite(f):
        raise ParameterError(f"metric of tensor {name} pruned to sparsity {level:g} is {value!r}; "
                             "expected a finite number")
    return f


def analyze(theta: np.ndarray, layout: Layout, metric: Callable[[np.ndarray], float] | None,
            levels: Iterable[float], *, tensors: Sequence[str] | str | None = None,
            batch_metric: Callable[[np.ndarray], np.ndarray] | None = None,
            progress: Callable[[int, int, str], None] | None = None) -> list[SensitivityRow]:
    """Score ``theta`` with each tensor ALONE pruned to each level (no retraining, §2.5).

    ``tensors``: names to analyse (default: every ``weight`` tensor, in layout order).
    ``metric(theta) -> float`` scores one vector; ``batch_metric(thetas (m, p)) -> (m,)`` scores a
    stack (used when given, at most :data:`MAX_BATCH_ROWS` rows per call). ``progress(done,
    total, info)`` is called after every chunk with the number of evaluations done so far.
    Rows come tensor by tensor, levels in the given order; ``theta`` is not modified.
    """
    theta = np.array(_theta(theta, layout), dtype=np.float64)  # private copy: callers keep theirs
    names = _check_tensors(layout, tensors)
    lv = _check_levels(levels)
    if batch_metric is None and metric is None:
        raise ParameterError("sensitivity analysis needs a metric or a batch_metric")
    total, done = len(names) * len(lv), 0
    rows: list[SensitivityRow] = []
    for name in names:
        spec = layout[name]
        for start in range(0, len(lv), MAX_BATCH_ROWS):
            chunk = lv[start:start + MAX_BATCH_ROWS]
            stack = np.repeat(theta[None, :], len(chunk), axis=0)
            for row, level in zip(stack, chunk):
                row[~level_mask(theta, layout, name, level)] = 0.0
            if batch_metric is not None:
                raw = batch_metric(stack.copy())
                try:
                    out = np.asarray(raw, dtype=np.float64)
                except (TypeError, ValueError):
                    raise ParameterError(f"batch metric of tensor {name} at sparsity "
                                         f"{', '.join(f'{v:g}' for v in chunk)} returned {raw!r}; "
                                         "expected an array of finite numbers") from None
                if out.shape != (len(chunk),):
                    raise ParameterError(f"batch metric returned shape {out.shape} for "
                                         f"{len(chunk)} parameter vectors; expected ({len(chunk)},)")
                values = [_finite(v, name, level) for v, level in zip(out, chunk)]
            else:
                values = [_finite(metric(row.copy()), name, level)  # type: ignore[misc]
                          for row, level in zip(stack, chunk)]
            for row, level, value in zip(stack, chunk, values):
                rows.append(SensitivityRow(name, level, value,
                                           int(np.count_nonzero(row[spec.slice])), spec.size))
            done += len(chunk)
            if progress is not None:
                progress(done, total, f"{name}: " + ", ".join(
                    f"{level:g} -> {value:.4f}" for level, value in zip(chunk, values)))
    return rows


# --------------------------------------------------------------------------- CSV
def _fmt_sparsity(s: float) -> str:
    return repr(float(s))  # shortest text that reads back as the same float: "0.3", "0.0"


def write_csv(rows: Iterable[SensitivityRow], path: str | os.PathLike) -> None:
    """Write ``tensor,sparsity,metric,nonzero,size`` (metric with 6 decimals) atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        w.writerow([r.tensor, _fmt_sparsity(r.sparsity), "%.6f" % r.metric, int(r.nonzero), int(r.size)])
    write_text_atomic(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[SensitivityRow]:
    """Inverse of :func:`write_csv` (metric as written, 6 decimals); ParameterError on a bad file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"{p}: no such sensitivity CSV") from None
    except (OSError, UnicodeError) as exc:
        raise ParameterError(f"{p}: cannot read the sensitivity CSV ({exc.__class__.__name__})") from None
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or tuple(lines[0]) != CSV_HEADER:
        raise ParameterError(f"{p}: not a sensitivity CSV; expected the header {','.join(CSV_HEADER)}")
    rows = []
    for i, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue
        try:
            if len(fields) != len(CSV_HEADER) or not fields[0]:
                raise ValueError
            tensor, s, m, nz, size = fields[0], float(fields[1]), float(fields[2]), int(fields[3]), int(fields[4])
            if not (0.0 <= s <= 1.0 and math.isfinite(m) and size >= 1 and 0 <= nz <= size):
                raise ValueError
        except ValueError:
            raise ParameterError(f"{p}: line {i} is malformed; expected tensor, a sparsity in [0, 1], "
                                 "a finite metric, 0 <= nonzero <= size") from None
        rows.append(SensitivityRow(tensor, s, m, nz, size))
    return rows


# --------------------------------------------------------------------------- figure
def _curves(rows: Iterable[SensitivityRow]) -> dict[str, list[SensitivityRow]]:
    """Rows grouped by tensor (first-appearance order), each sorted by sparsity."""
    out: dict[str, list[SensitivityRow]] = {}
    for r in rows:
        out.setdefault(r.tensor, []).append(r)
    return {k: sorted(v, key=lambda r: r.sparsity) for k, v in out.items()}


def plot(rows: Iterable[SensitivityRow], path: str | os.PathLike, *, metric_name: str = "VSTOI",
         reference: float | None = None) -> None:
    """Write a PNG: metric vs sparsity, one line per tensor, dashed line at ``reference``
    (:func:`pa_ci.plots.sensitivity_figure`)."""
    curves = _curves(rows)
    if not curves:
        raise ParameterError(f"{path}: no sensitivity rows to plot")
    from ..plots import sensitivity_figure
    sensitivity_figure({name: ([r.sparsity for r in pts], [r.metric for r in pts])
                        for name, pts in curves.items()}, path, metric_name=metric_name,
                       reference=reference)


# --------------------------------------------------------------------------- proposals
def propose_levels(rows: Iterable[SensitivityRow], tolerance: float, *,
                   reference: float | None = None) -> dict[str, float]:
    """Per tensor: the largest tested sparsity whose metric >= reference - tolerance such that
    every smaller tested sparsity passes too (monotone safeguard against a lucky bump).

    ``reference`` defaults to each tensor's metric at sparsity 0 (then it must have been tested);
    a tensor whose smallest tested level already fails gets 0.0. Metrics are higher-is-better.
    """
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = float("nan")
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ParameterError(f"tolerance {tolerance!r}: expected a finite number >= 0")
    if reference is not None and not math.isfinite(float(reference)):
        raise ParameterError(f"reference {reference!r}: expected a finite number")
    out: dict[str, float] = {}
    for name, pts in _curves(rows).items():
        levels = [r.sparsity for r in pts]
        if len(set(levels)) != len(levels):
            raise ParameterError(f"tensor {name} has two rows at one sparsity")
        if reference is None:
            if levels[0] != 0.0:
                raise ParameterError(f"tensor {name} has no row at sparsity 0; give the unpruned "
                                     "reference metric")
            ref = pts[0].metric
        else:
            ref = float(reference)
        best = 0.0
        for r in pts:
            if not r.metric >= ref - tol:
                break
            best = r.sparsity
        out[name] = best
    return out


def proposed_sparsity(rows: Iterable[SensitivityRow], levels: Mapping[str, float]) -> float:
    """Overall sparsity of the analysed tensors when each is pruned to ``levels[tensor]``:
    sum of round(level x n) over sum of n (the counts :func:`level_mask` prunes)."""
    sizes = {r.tensor: r.size for r in rows}
    total = sum(sizes.values())
    return sum(n_pruned(levels[t], n) for t, n in sizes.items()) / total if total else 0.0


def propose_for_sparsity(rows: Iterable[SensitivityRow], target: float, *,
                         reference: float | None = None) -> tuple[dict[str, float], float]:
    """The smallest tolerance whose :func:`propose_levels` reach ``target`` overall sparsity.

    Returns ``(levels, tolerance)``; the tolerances tried are the metric drops seen in ``rows``, so
    the result is the least damaging proposal (by the per-tensor curves) that prunes at least
    ``target`` of the analysed weights. A target beyond the largest tested levels is an error.
    """
    rows = list(rows)
    target = check_rate(target)
    refs = {name: (pts[0].metric if reference is None else float(reference))
            for name, pts in _curves(rows).items()}
    drops = sorted({max(0.0, refs[r.tensor] - r.metric) for r in rows})
    for tol in drops:
        levels = propose_levels(rows, tol, reference=reference)
        if proposed_sparsity(rows, levels) >= target - 1e-12:
            return levels, tol
    best = proposed_sparsity(rows, propose_levels(rows, drops[-1] if drops else 0.0,
                                                  reference=reference))
    raise ParameterError(f"overall sparsity {target:g} is beyond the tested levels (at most "
                         f"{best:.3f}); extend --range")


def tensor_std(theta: np.ndarray, layout: Layout, name: str) -> float:
    """Sample std (ddof=1) of a tensor's entries: Distiller's ``param.std()`` (torch's default is
    the unbiased estimator), the sigma of the SensitivityPruner threshold s * sigma (§2.1)."""
    spec = layout[name]
    w = _theta(theta, layout)[spec.slice].astype(np.float64)
    if w.size < 2:
        raise ParameterError(f"tensor {name} has {w.size} entry; its std needs at least 2")
    return float(np.std(w, ddof=1))


def threshold_mask(theta: np.ndarray, layout: Layout, name: str, s: float) -> np.ndarray:
    """Keep-mask (bool, ``layout.size``) of Distiller's SensitivityPruner on tensor ``name`` only:
    entries with |w| <= s * tensor_std are pruned, everything else is kept."""
    spec = layout[name]
    theta = _theta(theta, layout)
    keep = np.ones(layout.size, dtype=bool)
    keep[spec.slice] = np.abs(theta[spec.slice]) > float(s) * tensor_std(theta, layout, name)
    return keep


def _short_between(lo: float, hi: float, ok: Callable[[float], bool]) -> float:
    """A short decimal in [lo, hi] near their midpoint for which ``ok`` holds (the midpoint itself
    if no decimal with <= 17 places does)."""
    mid = 0.5 * (lo + hi)
    for d in range(4, 18):
        s = round(mid, d)
        if ok(s):
            return s
    return mid


def propose_sensitivities(theta: np.ndarray, layout: Layout,
                          levels: Mapping[str, float]) -> dict[str, float]:
    """Per tensor, the SensitivityPruner multiplier s that prunes the proposed level on THIS model.

    With a = sorted |w| (n entries) and k = round(level * n): s * std lies between a[k-1] and a[k]
    (the shortest decimal near their midpoint), so "prune |w| <= s * std" prunes exactly k entries
    unless a[k-1] == a[k] (ties; then all tied entries go). k = 0 gives s = 0 (only exact zeros are
    pruned); k = n gives max |w| / std rounded UP to the shortest decimal that still prunes all.
    std is :func:`tensor_std` (ddof=1); :func:`threshold_mask` applies s exactly this way.
    """
    theta = _theta(theta, layout)
    out: dict[str, float] = {}
    for name, level in levels.items():
        spec = layout[name]
        level = check_rate(level)
        sd = tensor_std(theta, layout, name)
        if not (math.isfinite(sd) and sd > 0.0):
            raise ParameterError(f"tensor {name} has std {sd:g}; a threshold s * std cannot "
                                 "prune a fraction of it")
        a = np.sort(np.abs(theta[spec.slice].astype(np.float64)))
        n, k = a.size, n_pruned(level, a.size)

        def count(s: float) -> int:
            return int(np.count_nonzero(a <= s * sd))

        if k == 0:
            s = 0.0
        elif k == n:
            lo = float(a[-1] / sd)
            s = next((v for v in (math.ceil(lo * 10 ** d) / 10 ** d for d in range(4, 18))
                      if count(v) == n), lo)
        else:
            s = _short_between(float(a[k - 1] / sd), float(a[k] / sd), lambda v: count(v) == k)
        while count(s) < k:  # ties at the boundary (or rounding): at least k go, ties included
            s = float(np.nextafter(s, np.inf))
        out[name] = float(s)
    return out


# --------------------------------------------------------------------------- Distiller YAML
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def _yaml_float(s: float) -> str:
    """4 decimals, more only when needed to read back exactly the same float (PyYAML floats need
    a dot, so never the '1e-05' form)."""
    for d in range(4, 40):
        text = f"{s:.{d}f}"
        if float(text) == s:
            return text
    return f"{s:.17e}"


def _check_int(value: object, what: str, low: int) -> int:
    if not is_int(value) or int(value) < low:
        raise ParameterError(f"schedule {what} {value!r}: expected an integer >= {low}")
    return int(value)


def schedule_yaml(sensitivities: Mapping[str, float], *, pruner_name: str = "sensitivity_pruner",
                  starting_epoch: int = 0, ending_epoch: int = 1, frequency: int = 1,
                  comment: str = "") -> str:
    """Distiller compression-schedule YAML (§2.2) with one SensitivityPruner and its policy.

    The policy fires on range(starting_epoch, ending_epoch, frequency) (end exclusive, as in
    Distiller's scheduler, which asserts 0 <= start < end and 0 < frequency <= end - start).
    Tensor names are single-quoted; s has 4 decimals unless more are needed to reproduce it
    exactly. ``comment`` lines come first, each prefixed ``# ``.
    """
    if not isinstance(pruner_name, str) or not _NAME.match(pruner_name):
        raise ParameterError(f"pruner name {pruner_name!r}: expected letters, digits, '_', '.', '-'")
    start = _check_int(starting_epoch, "starting epoch", 0)
    end = _check_int(ending_epoch, "ending epoch", start + 1)
    freq = _check_int(frequency, "frequency", 1)
    if freq > end - start:
        raise ParameterError(f"schedule frequency {freq} is above ending - starting epoch ({end - start})")
    lines = [f"# {ln}".rstrip() for ln in comment.splitlines()] if comment else []
    lines += ["version: 1", "pruners:", f"  {pruner_name}:", "    class: SensitivityPruner"]
    if not sensitivities:
        lines.append("    sensitivities: {}")
    else:
        lines.append("    sensitivities:")
        for name, s in sensitivities.items():
            try:
                v = float(s)
            except (TypeError, ValueError):
                v = float("nan")
            if not isinstance(name, str) or not name or not (math.isfinite(v) and v >= 0.0):
                raise ParameterError(f"sensitivity {name!r}: {s!r}; expected a tensor name and a "
                                     "finite s >= 0")
            quoted = name.replace("'", "''")
            lines.append(f"      '{quoted}': {_yaml_float(v)}")
    lines += ["policies:", "  - pruner:", f"      instance_name: {pruner_name}",
              f"    starting_epoch: {start}", f"    ending_epoch: {end}", f"    frequency: {freq}"]
    return "\n".join(lines) + "\n"
