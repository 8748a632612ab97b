"""The paper's pruning-rate sweep (§II-D, §III Figs. 1-7): many protocol runs, one results table.

A sweep is the cross product rates x scopes x methods x perturbation functions g x seeds; every
point is one run of the paper's protocol (:func:`pa_ci.experiment.protocol.run_one`: proposed = PA training
with Eq. 5/6, prune, fine-tune; baseline = magnitude pruning, fine-tune). A sweep lives in one
folder::

    OUT/sweep.json     the grid and what every run shares (the job's description), written first
    OUT/results.csv    one row per finished run, rewritten atomically after EVERY finished run
    OUT/failed.json    key -> one-line error of the runs that failed (only when some did)
    OUT/*.png          the paper's figures (:func:`plot_sweep`, needs matplotlib)

Starting again with the same folder resumes: runs whose key is already in ``results.csv`` are
skipped, so an interrupted sweep loses at most the runs in flight. Settings that change what a
run *means* (every spec field that is not a grid axis: ``pa_iters``, ``finetune_iters``,
``lam``, ...; and the job description, which names the dataset by its key) must match
``sweep.json``, because a run's key does not contain them; adding rates, scopes, methods, g or
seeds is allowed. A mismatch is one error naming the setting and both values.

This module holds the grid (:class:`SweepPlan`, :func:`parse_rates`), the folder's settings
(``sweep.json``), :func:`run_sweep` and the summaries and figures of the table; the ledger of the
results (``results.csv``, ``failed.json``, :func:`read_results`) is
:mod:`pa_ci.experiment.ledger`. Runs are executed in-process (``workers=1``), on a local process
pool (``workers>1``; a script that calls :func:`run_sweep` with workers must guard its entry
point with ``if __name__ == "__main__":``), or on a Dask cluster (``scheduler="tcp://host:port"``,
the optional ``dist`` extra): :mod:`pa_ci.experiment.executors`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .._files import claim_folder, write_text_atomic
from ..errors import ParameterError, TrainingError
from ..progress import ProgressFn
from ..prune.magnitude import SCOPES as _SCOPES
from ..prune.pruning_aware import PERTURBATIONS as _PERTURBATIONS
from ..validate import is_int, number_or_nan as _number
from .executors import Runner, _connect, _dask, _run_dask, _run_here, _run_pool, parse_scheduler
# the results ledger; LEADING_COLUMNS and read_results are this module's names too, as before
from .ledger import (LEADING_COLUMNS, _jsonable, _Ledger, _parse_cell, _read_csv,  # noqa: F401
                     _row_order, _spec_dict, read_results)
from .protocol import METHODS, RunSpec, run_one

#: Pruning rates of the paper (§II-D): 0.05, 0.10, ..., 0.95.
PAPER_RATES: tuple[float, ...] = tuple(round(0.05 * i, 10) for i in range(1, 20))
SCOPES: tuple[str, ...] = tuple(_SCOPES)
#: Perturbation functions g of Eq. 6 (:data:`pa_ci.prune.PERTURBATIONS`).
G_NAMES: tuple[str, ...] = tuple(_PERTURBATIONS)
#: The g recorded for the magnitude baseline, which does not use Eq. 6.
NO_G = "-"
SWEEP_FORMAT = "pa-ci-sweep"
#: The grid axes of sweep.json (spec field -> grid name). Every OTHER spec field (pa_iters,
#: finetune_iters, lam, ...) and the job description define what a run means: they must match
#: on resume, because a run's key does not contain them.
AXES = {"rate": "rates", "scope": "scopes", "method": "methods", "g": "gs", "seed": "seeds"}


# ----------------------------------------------------------------------------- planning
#: Upper bound on the rates of one sweep (the paper's grid has 19); more is a typo, not a plan.
MAX_RATES = 1000


def parse_rates(text: str | None = None) -> tuple[float, ...]:
    """Pruning rates from ``"START..STOP:STEP"`` (inclusive) or ``"R1,R2,..."``.

    ``None`` or ``""`` gives the paper's 0.05..0.95:0.05 (19 rates). Values are rounded to 10
    decimals (so 3 x 0.05 is 0.15, not 0.15000000000000002), sorted and de-duplicated; every rate
    must lie in (0, 1).
    """
    if text is None or not text.strip():
        return PAPER_RATES
    text = text.strip()
    syntax = "expected 'START..STOP:STEP' or 'R1,R2,...', e.g. '0.05..0.95:0.05' or '0.3,0.7'"
    try:
        if ".." in text:
            span, sep, step_text = text.partition(":")
            start_text, _, stop_text = span.partition("..")
            if not sep:
                raise ValueError
            start, stop, step = float(start_text), float(stop_text), float(step_text)
            if not (step > 0 and math.isfinite(step) and stop >= start):
                raise ParameterError(f"rates {text!r}: need STEP > 0 and STOP >= START")
            n = int(math.floor((stop - start) / step + 1e-9))
            if n + 1 > MAX_RATES:
                raise ParameterError(f"rates {text!r}: {n + 1} rates; expected at most {MAX_RATES} "
                                     "(a larger STEP)")
            values = [round(start + i * step, 10) for i in range(n + 1)]
        else:
            values = [round(float(part), 10) for part in text.split(",")]
            if len(values) > MAX_RATES:
                raise ParameterError(f"rates {text!r}: {len(values)} rates; expected at most {MAX_RATES}")
    except ParameterError:
        raise
    except ValueError:
        raise ParameterError(f"rates {text!r}: {syntax}") from None
    for rate in values:
        if not 0 < rate < 1:
            raise ParameterError(f"rates {text!r}: every pruning rate must be in (0, 1), got {rate}")
    return tuple(sorted(set(values)))


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class SweepPlan:
    """The grid of a sweep (paper §II-D); :meth:`specs` lists its runs.

    Order of the runs: seed outermost, then scope, method, g, rate, so that an interrupted sweep
    has complete curves for its first seeds. The ``magnitude`` baseline does not use g (Eq. 6),
    so it gets ONE run per (rate, scope, seed), recorded with ``g = "-"``.

    Iterations: the ``pa`` runs train ``pa_iters`` PA iterations, then fine-tune
    ``finetune_iters``; the ``magnitude`` runs fine-tune ``baseline_iters`` (None: the same
    total, ``pa_iters + finetune_iters``, as the paper: 8000). A baseline of that total is
    recorded with the grid's ``pa_iters`` and ``finetune_iters`` (its ``finetune_total`` is the
    sum), any other with ``pa_iters = 0`` and ``finetune_iters = baseline_iters``.
    """

    rates: tuple[float, ...] = PAPER_RATES
    scopes: tuple[str, ...] = ("whole", "decoder")
    methods: tuple[str, ...] = METHODS
    gs: tuple[str, ...] = ("linear",)
    seeds: tuple[int, ...] = (0,)
    pa_iters: int = 1000
    finetune_iters: int = 7000
    baseline_iters: int | None = None

    def __post_init__(self) -> None:
        norm = {
            "rates": _unique(round(float(r), 10) for r in self.rates),
            "scopes": _unique(str(s) for s in self.scopes),
            "methods": _unique(str(m) for m in self.methods),
            "gs": _unique(str(g) for g in self.gs),
            "seeds": _unique(self.seeds),
        }
        for name, values in norm.items():
            if not values:
                raise ParameterError(f"sweep {name}: at least one value is needed")
            object.__setattr__(self, name, values)
        for rate in self.rates:
            if not 0 < rate < 1:
                raise ParameterError(f"sweep rates: every pruning rate must be in (0, 1), got {rate}")
        for name, allowed in (("scope", SCOPES), ("method", METHODS), ("g", G_NAMES)):
            for value in getattr(self, name + "s"):
                if value not in allowed:
                    raise ParameterError(f"sweep {name} {value!r}: expected one of {', '.join(allowed)}")
        for seed in self.seeds:
            if not is_int(seed) or seed < 0:
                raise ParameterError(f"sweep seeds: expected integers >= 0, got {seed!r}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        for name in ("pa_iters", "finetune_iters"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                raise ParameterError(f"sweep {name}: expected an integer >= 0, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.baseline_iters is not None:
            value = self.baseline_iters
            if not is_int(value) or value < 0:
                raise ParameterError(f"sweep baseline_iters: expected an integer >= 0, got {value!r}")
            object.__setattr__(self, "baseline_iters", int(value))

    def _iterations(self, method: str) -> tuple[int, int]:
        """(pa_iters, finetune_iters) of the runs of ``method`` (see the class docstring)."""
        total = self.pa_iters + self.finetune_iters
        if method != "magnitude" or self.baseline_iters in (None, total):
            return self.pa_iters, self.finetune_iters
        return 0, int(self.baseline_iters)

    def specs(self, spec_type: Any = None, **fields: Any) -> list[Any]:
        """The runs, as ``spec_type`` (default :class:`pa_ci.experiment.protocol.RunSpec`) instances;
        ``fields`` (e.g. ``lam=0.5``) are passed to every spec."""
        make = spec_type if spec_type is not None else RunSpec
        out = []
        for seed in self.seeds:
            for scope in self.scopes:
                for method in self.methods:
                    pa_iters, finetune_iters = self._iterations(method)
                    for g in (self.gs if method == "pa" else (NO_G,)):
                        for rate in self.rates:
                            out.append(make(rate=rate, scope=scope, method=method, g=g, seed=seed,
                                            pa_iters=pa_iters, finetune_iters=finetune_iters,
                                            **fields))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def plan_runs(rates: Sequence[float] = PAPER_RATES, scopes: Sequence[str] = ("whole", "decoder"),
              methods: Sequence[str] = METHODS, gs: Sequence[str] = ("linear",),
              seeds: Sequence[int] = (0,), pa_iters: int = 1000, finetune_iters: int = 7000,
              *, baseline_iters: int | None = None, spec_type: Any = None,
              **fields: Any) -> list[Any]:
    """The cross product of the grid as run specs; see :class:`SweepPlan` (order, g = "-",
    iterations: ``baseline_iters`` = the magnitude runs' fine-tuning, default
    ``pa_iters + finetune_iters``).

    ``fields`` (e.g. ``lam=0.5``) go to every spec; ``spec_type`` defaults to
    :class:`pa_ci.experiment.protocol.RunSpec`.
    """
    plan = SweepPlan(tuple(rates), tuple(scopes), tuple(methods), tuple(gs), tuple(seeds),
                     pa_iters, finetune_iters, baseline_iters)
    return plan.specs(spec_type, **fields)


# ----------------------------------------------------------------------------- descriptions
def describe_job(job: Any) -> Any:
    """What ``sweep.json`` records of the shared job: ``job.describe()`` if it has one, else its
    dataclass fields / dict items (bytes and arrays by SHA-256), never a ``repr``."""
    if job is not None and callable(getattr(job, "describe", None)):
        job = job.describe()
    return json.loads(json.dumps(_jsonable(job), sort_keys=True))


def _first_difference(old: Any, new: Any, path: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if old == new else path


def _value_at(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` (as :func:`_first_difference` names it, ``job.a.b``)."""
    for key in path.split(".")[1:]:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    """JSON-safe, de-duplicated, sorted (numbers by value, then strings, then the rest)."""
    unique = {json.dumps(_jsonable(v), sort_keys=True): _jsonable(v) for v in values}

    def order(text: str) -> tuple:
        v = unique[text]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (0, float(v), text)
        return (1, 0.0, v) if isinstance(v, str) else (2, 0.0, text)
    return [unique[k] for k in sorted(unique, key=order)]


def _grid_of(specs: Sequence[Any]) -> dict[str, list]:
    """Per spec field, its values (axes under their grid names: rates, scopes, ...)."""
    values: dict[str, list] = defaultdict(list)
    for spec in specs:
        for name, value in _spec_dict(spec).items():
            values[AXES.get(name, name)].append(value)
    return {name: _sorted_values(v) for name, v in values.items()}


# ----------------------------------------------------------------------------- running
@dataclass
class SweepResult:
    """What :func:`run_sweep` did. ``rows``: every finished run of the folder (old and new), in
    ``results.csv`` order, numbers parsed; ``failed``: key -> one-line error of this call."""

    out_dir: Path
    rows: list[dict[str, Any]]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def csv_path(self) -> Path:
        return self.out_dir / "results.csv"


def _prepare(specs: Sequence[Any], job: Any, out_dir: Path) -> dict[str, dict[str, str]]:
    """Check a resumed folder against the new sweep, write sweep.json, return the finished rows."""
    if not specs:
        raise ParameterError(f"{out_dir}: the sweep has no runs")
    keys = [s.key() for s in specs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ParameterError(f"sweep: run {dup!r} is listed more than once")
    grid = _grid_of(specs)
    record = {"format": SWEEP_FORMAT, "grid": grid, "job": describe_job(job)}
    config_path, csv_path = out_dir / "sweep.json", out_dir / "results.csv"
    rows: dict[str, dict[str, str]] = {}
    if config_path.exists():
        try:
            old = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TrainingError(f"{config_path}: unreadable sweep settings ({exc})") from None
        if not isinstance(old, dict) or old.get("format") != SWEEP_FORMAT:
            raise TrainingError(f"{config_path}: not a pa-ci sweep folder")
        old_grid = old.get("grid", {})
        axes = set(AXES.values())
        where = next((n for n in sorted(set(old_grid) | set(grid))
                      if n not in axes and old_grid.get(n) != grid.get(n)), None)
        values = f" (stored {old_grid.get(where)}, now {grid.get(where)})" if where else ""
        if not where:
            where = _first_difference(old.get("job"), record["job"], "job")
            if where:
                values = (f" (stored {_value_at(old.get('job'), where)}, now "
                          f"{_value_at(record['job'], where)})")
        if where:
            raise TrainingError(
                f"{config_path}: setting {where!r} differs from the sweep in this folder{values}; "
                "use another output folder (results are not mixed)")
        for name in axes & set(old_grid):  # a resumed sweep may add grid points
            grid[name] = _sorted_values(old_grid[name] + grid.get(name, []))
        if csv_path.exists():
            rows = _read_csv(csv_path)
    elif csv_path.exists():
        raise TrainingError(f"{csv_path}: results without sweep.json; use another output folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(config_path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return rows


def run_sweep(specs: Sequence[Any], job: Any, out_dir: str | os.PathLike, *,
              runner: Runner | None = None, workers: int = 1, scheduler: str | None = None,
              progress: ProgressFn | None = None) -> SweepResult:
    """Run every spec not yet in ``out_dir/results.csv``: ``runner(spec, job) -> dict``.

    ``runner`` defaults to :func:`pa_ci.experiment.protocol.run_one`; it and ``job`` must be picklable for
    ``workers > 1`` or a ``scheduler``. ``workers=1`` runs in this process; ``workers>1`` uses a
    "spawn" process pool with ``NUMBA_NUM_THREADS = cores // workers`` (set in the environment
    before the pool starts, which spawned children inherit, and via ``numba.set_num_threads`` in
    each worker). ``scheduler="tcp://host:port"`` submits to that Dask scheduler instead
    (``workers`` is then ignored; size the Dask workers' threads yourself).

    A run that raises is recorded in ``out_dir/failed.json`` and the others go on; the result's
    ``failed`` lists them. ``progress(done, total, info)`` is called after each finished or
    failed run (``total`` = runs to do in this call; ``info``: key and vstoi_pruned /
    vstoi_finetuned, or key and error). Ctrl-C cancels the pending runs, keeps results.csv as
    it is and re-raises KeyboardInterrupt.
    """
    if not is_int(workers) or workers < 1:
        raise ParameterError(f"sweep workers: expected an integer >= 1, got {workers!r}")
    if scheduler:
        parse_scheduler(scheduler)
    dask = _dask() if scheduler else None  # fail before touching the folder
    client = _connect(scheduler, dask[0]) if dask is not None else None
    out = Path(out_dir)
    try:
        with claim_folder(out, "sweep", TrainingError):
            rows = _prepare(specs, job, out)
            todo = [s for s in specs if s.key() not in rows]
            skipped = [s.key() for s in specs if s.key() in rows]
            ledger = _Ledger(out, rows, len(todo), progress)
            run = runner if runner is not None else run_one
            if dask is not None:
                _run_dask(todo, job, run, client, ledger, dask[1])
            elif workers == 1 or len(todo) <= 1:
                _run_here(todo, job, run, ledger)
            else:
                _run_pool(todo, job, run, min(workers, len(todo)), ledger)
            ledger.write_failed()  # on normal completion: also clears a stale failed.json
            parsed = [{k: _parse_cell(v) for k, v in row.items()}
                      for row in sorted(rows.values(), key=_row_order)]
            return SweepResult(out, parsed, ledger.done, skipped, ledger.failed)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


# ----------------------------------------------------------------------------- summaries
def _stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None, None, None
    return float(np.mean(finite)), float(min(finite)), float(max(finite))


def summary_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (scope, rate, method, g): seeds ``n``, mean/min/max of vstoi_pruned and
    vstoi_finetuned; pa rows also get ``pruned_gain`` / ``finetuned_gain`` = PA seed mean minus
    the magnitude seed mean at the same (scope, rate) (None without a baseline)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (str(row.get("scope")), _number(row.get("rate")), str(row.get("method")),
               str(row.get("g")))
        groups[key].append(row)
    table = []
    for (scope, rate, method, g), members in sorted(groups.items()):
        entry: dict[str, Any] = {"scope": scope, "rate": rate, "method": method, "g": g,
                                 "n": len(members)}
        for name in ("vstoi_pruned", "vstoi_finetuned"):
            mean, lo, hi = _stats([_number(r.get(name)) for r in members])
            entry.update({f"{name}_mean": mean, f"{name}_min": lo, f"{name}_max": hi})
        table.append(entry)
    baseline = {(e["scope"], e["rate"]): e for e in table if e["method"] == "magnitude"}
    for entry in table:
        if entry["method"] != "pa":
            continue
        base = baseline.get((entry["scope"], entry["rate"]))
        for name, gain in (("vstoi_pruned", "pruned_gain"), ("vstoi_finetuned", "finetuned_gain")):
            a = entry[f"{name}_mean"]
            b = base[f"{name}_mean"] if base else None
            entry[gain] = None if a is None or b is None else a - b
    return table


# ----------------------------------------------------------------------------- figures
def plot_sweep(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """The paper's figures from sweep rows (:func:`pa_ci.plots.sweep_figures`: Figs. 1-7, mean
    over seeds with min-max bars); returns the PNGs written, ``[]`` without matplotlib."""
    from ..plots import sweep_figures
    return sweep_figures(rows, out_dir, scopes=SCOPES, g_names=G_NAMES)
