"""Running a compression schedule: pruning events between epochs of SPSA fine-tuning.

One concept: :func:`run_schedule` (and :func:`apply_events`, one epoch's pruning events) for a
:class:`~pa_ci.prune.schedule.Schedule` read by :mod:`pa_ci.prune.schedule`. An epoch is
``iterations_per_epoch`` SPSA iterations (paper Eq. 7, :mod:`pa_ci.train.spsa`) on mean VSTOI of
the weights that are not pruned; LR schedulers scale SPSA's step gain a.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .._files import claim_folder, write_text_atomic
from ..errors import ParameterError, TrainingError
from ..progress import ProgressFn
from ..codec.coder import export_run_model
from ..codec.frae import FraeConfig, frae_layout
from ..codec.layout import Layout
from ..codec.model_file import ModelFile, save_model
from ..train.objective import VstoiObjective
from ..train.spsa import Gains
from ..train.training import (MAX_ITERATIONS, TrainOptions, open_run_folder, record_dataset,
                              train_stage)
from .magnitude import part_counts
from .schedule import DEFAULT_ITERATIONS_PER_EPOCH, MAX_EPOCHS, Schedule

__all__ = ["apply_events", "run_schedule"]


def apply_events(schedule: Schedule, theta: np.ndarray, layout: Layout, keep: np.ndarray,
                 epoch: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Fire the pruners of ``epoch`` on ``theta``: (pruned theta, keep-mask, one row per tensor)."""
    rows = []
    for policy in schedule.events(epoch):
        pruner = schedule.pruners[policy.instance]
        keep, pruned = pruner.prune(theta, layout, keep, epoch, policy)
        theta = np.where(keep, theta, 0.0)
        rows += [{"epoch": epoch, "pruner": pruner.name, "class": pruner.class_name, **r}
                 for r in pruned]
    return theta, keep, rows


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch's SPSA perturbations, derived from the run seed (reproducible)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, epoch]).generate_state(1)[0])


def run_schedule(model: ModelFile, schedule: Schedule, run_dir: str | os.PathLike, *,
                 train_items: Sequence[Any], eval_items: Sequence[Any],
                 iterations_per_epoch: int | None = None, epochs: int | None = None,
                 gains: Gains | None = None, batch_size: int | None = None, seed: int = 0,
                 checkpoint_every: int = 25, resume: bool = False,
                 progress: Callable[[int, int, int], ProgressFn | None] | None = None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None,
                 dataset: dict[str, Any] | None = None,
                 export_part: str | None = None) -> dict[str, Any]:
    """Run ``schedule`` from ``model`` in ``run_dir``; return (and write) its figures.

    Epoch e: the pruners of e fire on the current weights (masks only grow), then
    ``iterations_per_epoch`` SPSA iterations (one :func:`pa_ci.train.training.train` stage in
    ``RUN/epochs/EEE``) train the weights that are not pruned; the gain index k runs on across
    epochs (``TrainOptions.first_iteration``) and a is scaled by the LR schedulers. VSTOI on
    ``eval_items`` is measured after every pruning event and after every epoch
    (``RUN/epochs.csv``, ``RUN/events.csv``). ``resume`` reuses finished epochs (the pruning
    events are replayed, so the sensitivity pruner's cached std is the same) and continues an
    interrupted one. ``progress(epoch, epochs, iterations_per_epoch)`` returns the callback of one
    epoch's training; ``on_epoch(row)`` sees each row of epochs.csv as it is written.
    ``dataset``: the record of the dataset the items come from (:meth:`pa_ci.data.Dataset.record`),
    kept in run.json, result.json and the model files; a resume must use the same key.
    ``export_part``: also write ``RUN/<part>.pacx`` from the final model and add where and how
    big to the returned figures (:func:`pa_ci.codec.coder.export_run_model`).
    """
    t0 = time.monotonic()
    run = Path(run_dir)
    gains = gains or Gains()
    config = FraeConfig.from_dict(model.config)
    layout = frae_layout(config)
    if model.layout != layout:
        raise ParameterError(f"{model.path}: the model's layout is not the FRAE layout of its config")
    ipe = next(v for v in (iterations_per_epoch, schedule.iterations_per_epoch,
                           DEFAULT_ITERATIONS_PER_EPOCH) if v is not None)
    last = schedule.pruning_epochs[-1]
    n_epochs = epochs if epochs is not None else (schedule.epochs or last + 1)
    if not 0 <= ipe <= MAX_ITERATIONS:
        raise ParameterError(f"iterations per epoch must be in 0..{MAX_ITERATIONS}, got {ipe}")
    if not 1 <= n_epochs <= MAX_EPOCHS or ipe * n_epochs > MAX_ITERATIONS:
        raise ParameterError(f"{n_epochs} epochs of {ipe} iterations; expected at most {MAX_EPOCHS} "
                             f"epochs and {MAX_ITERATIONS} iterations in all")
    if n_epochs <= last:
        raise ParameterError(f"{n_epochs} epochs run, but the schedule prunes at epoch {last}; "
                             f"run at least {last + 1}")
    schedule.reset()
    describe = {"schedule_sha256": schedule.sha256(), "schedule_file": schedule.path,
                "model_hash": model.hash, "iterations_per_epoch": ipe, "epochs": n_epochs,
                "gains": gains.to_dict(), "batch_size": batch_size, "seed": seed}
    stage_kwargs, model_meta = record_dataset(describe, dataset)
    with claim_folder(run, "schedule run", TrainingError):
        open_run_folder(run, describe, resume, what="schedule run", ignore=("schedule_file",))
        write_text_atomic(run / "schedule.yaml", schedule.text)

        evaluator = VstoiObjective(eval_items, config)

        def score(theta: np.ndarray) -> float:
            return float(evaluator.evaluate(theta).mean())

        theta = np.array(model.theta, dtype=np.float64)
        keep = model.mask.copy() if model.mask is not None else np.ones(layout.size, dtype=bool)
        eligible = layout.mask(kinds="weight")
        vstoi_before = score(theta)
        events: list[dict[str, Any]] = []
        epoch_rows: list[dict[str, Any]] = []
        for epoch in range(n_epochs):
            theta, keep, rows = apply_events(schedule, theta, layout, keep, epoch)
            events += rows
            vstoi_pruned = score(theta) if rows else None
            train_vstoi = None
            if ipe > 0:
                record = {"stage": "schedule-epoch", "epoch": epoch,
                          "run": {k: v for k, v in describe.items()
                                  if k not in ("schedule_file", "dataset")}}
                options = TrainOptions(iters=ipe, seed=_epoch_seed(seed, epoch),
                                       gains=_scaled(gains, schedule.lr_factor(epoch)),
                                       batch_size=batch_size, warm_start_steps=0,
                                       checkpoint_every=checkpoint_every, first_iteration=epoch * ipe)
                done = train_stage(run, f"epochs/{epoch:03d}", train_items, theta, config, options,
                                   record, resume, progress(epoch, n_epochs, ipe) if progress else None,
                                   mask=keep, **stage_kwargs)
                if not np.array_equal(done.mask if done.mask is not None else keep, keep):
                    raise TrainingError(f"{run}/epochs/{epoch:03d}: its mask is not the schedule's; "
                                        "the folder belongs to another run")
                theta = done.theta
                train_vstoi = float(done.meta["train_vstoi"])
            row = {"epoch": epoch, "pruning_events": len({r["pruner"] for r in rows}),
                   "vstoi_pruned": vstoi_pruned, "vstoi": score(theta), "train_vstoi": train_vstoi,
                   "lr_factor": schedule.lr_factor(epoch),
                   "nonzero_weights": int(np.count_nonzero(theta[eligible])),
                   "sparsity": 1.0 - np.count_nonzero(theta[eligible]) / int(eligible.sum())}
            epoch_rows.append(row)
            _write_csv(run / "epochs.csv", epoch_rows)
            _write_csv(run / "events.csv", events)
            if on_epoch is not None:
                on_epoch(row)

        counts = part_counts(theta, config)
        tensors = {t.name: {"nonzero": int(np.count_nonzero(theta[t.slice])), "size": t.size}
                   for t in layout if t.kind != "codebook"}
        result = {"schedule": schedule.path, "schedule_sha256": schedule.sha256(),
                  "iterations_per_epoch": ipe, "epochs": n_epochs, "seed": seed,
                  "pruning_epochs": schedule.pruning_epochs,
                  "policies": [p.to_dict() for p in schedule.policies],
                  "vstoi_before": vstoi_before, "vstoi_final": epoch_rows[-1]["vstoi"],
                  "eligible_weights": int(eligible.sum()),
                  "nonzero_weights": int(np.count_nonzero(theta[eligible])),
                  "sparsity": epoch_rows[-1]["sparsity"], **counts, "tensors": tensors,
                  "eval_items": len(eval_items), "train_items": len(train_items),
                  "batch_size": batch_size, "gains": gains.to_dict(), "model_hash": model.hash,
                  "warnings": schedule.warnings, "seconds": round(time.monotonic() - t0, 3)}
        if dataset is not None:
            result["dataset"] = dict(dataset)
        meta = {"schedule": {k: v for k, v in result.items() if k not in ("seconds", "dataset")},
                **model_meta}
        save_model(run / "model.npz", theta, layout, config.to_dict(), meta, mask=keep)
        write_text_atomic(run / "result.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
        if export_part is not None:
            return {**result, **export_run_model(run, export_part, source=model.path)}
        return result


def _scaled(gains: Gains, factor: float) -> Gains:
    if factor == 1.0:
        return gains
    return Gains.from_dict({**gains.to_dict(), "a": gains.a * factor})


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else (f"{v:.6f}" if isinstance(v, float) else v))
                        for k, v in r.items()})
    write_text_atomic(path, buf.getvalue())
