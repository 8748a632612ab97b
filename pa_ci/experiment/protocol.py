"""One run of the paper's pruning protocol (Hinrichs & Ostermann, arXiv 2502.02424, §II-D).

* proposed (``method="pa"``): ``pa_iters`` SPSA iterations on the pruning-aware objective
  (Eq. 5/6, :class:`pa_ci.prune.PruningAwareObjective`) at the target rate, then magnitude
  pruning (Eq. 2-4), then ``finetune_iters`` SPSA iterations on mean VSTOI with the mask fixed;
* baseline (``method="magnitude"``): magnitude pruning, then fine-tuning (the paper: 8000
  iterations = 1000 + 7000, so both methods see the same number of iterations).

Iteration counts: :func:`protocol_spec` takes them as they are meant, ``pa_iters`` of PA
training and exactly ``finetune_iters`` of fine-tuning for either method (defaults: the paper's
1000 + 7000, and 8000 for the baseline). A :class:`RunSpec` of the baseline records what it
fine-tunes as ``pa_iters + finetune_iters`` (:attr:`RunSpec.finetune_total`): a sweep's baseline
keeps the grid's (1000, 7000) and fine-tunes 8000, a single baseline run is (0, n). Every
result says ``finetune_total``, the fine-tuning iterations that ran.

VSTOI is reported before anything (``vstoi_before``), after PA training (``vstoi_pa``; equals
``vstoi_before`` for the baseline), right after pruning (``vstoi_pruned``) and after fine-tuning
(``vstoi_finetuned``), on the evaluation split (the test split, as the paper: "All presented
results are obtained on the test set"). SPSA trains on the train split.

Choices the paper leaves open (DECISIONS.md, Pruning, and here): every stage restarts the SPSA
gain schedule at k = 0 (as fine-tuning a pretrained model with the paper's gains); during PA
training every parameter is trainable, during fine-tuning every parameter but the pruned weights
(biases, codebook and, for ``decoder`` pruning, the encoder too); the fine-tuning stage draws its
perturbations from ``seed + FINETUNE_SEED_OFFSET`` so they differ from the PA stage's, and the
baseline and the proposed method of one seed share them.

A run lives in a folder (resumable, every stage a :func:`pa_ci.train.training.train` run folder)::

    RUN/pa/          PA training (proposed method only)
    RUN/pruned.npz   the model right after pruning (with its mask)
    RUN/finetune/    fine-tuning with the mask fixed
    RUN/model.npz    the final pruned, fine-tuned model (mask saved: True = kept)
    RUN/result.json  the figures below, written last

``dataset`` (:meth:`pa_ci.data.Dataset.record`: key, path, item counts) is recorded in
``run.json``, ``result.json`` and the model files; resuming on a dataset of another key is an
error.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .._files import claim_folder, write_text_atomic
from ..codec.coder import export_run_model
from ..codec.frae import FraeConfig, frae_layout
from ..codec.model_file import ModelFile, load_model, save_model
from ..errors import ParameterError, TrainingError
from ..progress import ProgressFn
from ..prune.magnitude import eligible_mask, magnitude_mask, part_counts
from ..prune.pruning_aware import PruningAwareObjective
from ..train.objective import VstoiObjective
from ..train.spsa import MAX_ITERATIONS, Gains
from ..train.training import (LAST_ITERATE, TrainOptions, open_run_folder, record_dataset,
                              train_stage)
from ..validate import is_int, is_real
from .spec import (FINETUNE_SEED_OFFSET, METHODS, PAPER_BASELINE_ITERS, PAPER_FINETUNE_ITERS,  # noqa: F401
                   PAPER_PA_ITERS, RunSpec, protocol_spec)

__all__ = ["METHODS", "RunSpec", "JobContext", "protocol_spec", "run_protocol", "run_one",
           "part_counts", "FINETUNE_SEED_OFFSET", "PAPER_PA_ITERS", "PAPER_FINETUNE_ITERS",
           "PAPER_BASELINE_ITERS"]

_LAST_DATASET: list = []  # [(path, tiny, key), Dataset]: the dataset this worker process loaded last


def _spec_record(run: Path, spec: RunSpec, resume: bool) -> dict[str, Any]:
    """What a run records of its spec: ``spec.to_dict()``, or, when resuming a baseline run whose
    run.json splits the same fine-tuning total otherwise (e.g. (1000, 7000), as pa-ci 0.1
    recorded ``pa-ci prune --method magnitude``, against (0, 8000) now), the recorded one, so the
    same run resumes."""
    new = spec.to_dict()
    if not resume or spec.method != "magnitude":
        return new
    try:
        old = json.loads((run / "run.json").read_text(encoding="utf-8"))["spec"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return new

    def total(d: Any) -> dict[str, Any] | None:
        if not isinstance(d, dict) or d.get("method") != "magnitude":
            return None
        p, f = d.get("pa_iters"), d.get("finetune_iters")
        if not all(is_int(v) for v in (p, f)):
            return None
        return {**d, "pa_iters": 0, "finetune_iters": p + f}

    return old if total(old) is not None and total(old) == total(new) else new


@dataclass(frozen=True)
class JobContext:
    """What every run of a sweep shares; picklable, so it travels to process or Dask workers.

    ``model_bytes``: the starting model file's bytes (workers on other machines need no shared
    disk); ``tiny``: the tiny dataset split; ``gains``: SPSA gains (``Gains.to_dict()``);
    ``batch_size``: items per SPSA evaluation (None = the whole train split, as the paper);
    ``work_dir``: where run folders go (None: a temporary folder per run, removed after it).

    ``dataset_path``: a dataset folder (``pa-ci dataset build``) every worker loads (Dask workers
    on other machines need it at the same path, e.g. a shared disk); None: the worker builds the
    default (or tiny) dataset from the bundled data into its own cache. ``dataset_key``: the key
    the worker's dataset must have (a worker that finds another fails, naming both);
    ``dataset_counts``: its train and test item counts (recorded in ``sweep.json``).
    ``finetune_average``, ``precision``: see :func:`run_protocol`.
    """

    model_bytes: bytes
    model_name: str = "model"
    tiny: bool = False
    gains: dict = field(default_factory=lambda: Gains().to_dict())
    batch_size: int | None = None
    work_dir: str | None = None
    checkpoint_every: int = 25
    dataset_path: str | None = None
    dataset_key: str | None = None
    dataset_counts: dict | None = None
    finetune_average: float | None = None
    precision: str = "float64"

    @classmethod
    def from_model_file(cls, path: str | os.PathLike, **kwargs: Any) -> JobContext:
        model = load_model(path)  # one-line error for a bad file, before any worker starts
        return cls(model_bytes=model.path.read_bytes(), model_name=str(path), **kwargs)

    def model(self) -> ModelFile:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "model.npz"
            p.write_bytes(self.model_bytes)
            return load_model(p)

    def describe(self) -> dict[str, Any]:
        """The settings that define a run's figures: the model by its hash (not its path, so
        a sweep can resume with the same model given another way), dataset, gains, batch."""
        out = {"model_hash": self.model().hash, "tiny": self.tiny, "gains": dict(self.gains),
               "batch_size": self.batch_size}
        if self.dataset_key is not None:    # the content, not the folder it is read from
            out["dataset"] = {"key": self.dataset_key, **(self.dataset_counts or {})}
        if self.finetune_average is not None:   # sweeps without it keep their record
            out["finetune_average"] = self.finetune_average
        if self.precision != "float64":
            out["precision"] = self.precision
        return out

    def dataset(self):  # -> pa_ci.data.Dataset
        """The dataset of this job, as a worker gets it (see the class docstring); a worker
        process keeps the last one it loaded for the next run of the same job."""
        from ..data.dataset import build_dataset, default_config, open_dataset
        from ..errors import DataError
        memo = (self.dataset_path, self.tiny, self.dataset_key)
        if _LAST_DATASET and _LAST_DATASET[0] == memo:
            return _LAST_DATASET[1]
        if self.dataset_path is None:
            ds = build_dataset(default_config(tiny=self.tiny))
        else:
            try:
                ds = open_dataset(self.dataset_path)
            except DataError as exc:
                raise DataError(f"{exc} (a sweep worker reads the dataset at the path the sweep "
                                "was given: workers on other machines need it there too)") from None
        if self.dataset_key is not None and ds.key != self.dataset_key:
            raise DataError(f"{ds.path}: holds dataset {ds.key}, but the sweep runs on dataset "
                            f"{self.dataset_key}; give every worker the same dataset")
        _LAST_DATASET[:] = [memo, ds]
        return ds


def _check_before_claiming(model: ModelFile, spec: RunSpec, train_items: Sequence[Any],
                           eval_items: Sequence[Any], batch_size: int | None,
                           checkpoint_every: int = 25) -> None:
    """Everything that can fail about a run's inputs, checked before its folder is created."""
    if not train_items or not eval_items:
        raise ParameterError("a pruning run needs train and evaluation items")
    if not is_int(checkpoint_every) or not 1 <= checkpoint_every <= MAX_ITERATIONS:
        raise ParameterError(f"checkpoint interval must be an integer in 1..{MAX_ITERATIONS}, got "
                             f"{checkpoint_every!r}")
    if batch_size is not None and (not is_int(batch_size) or not 1 <= batch_size <= len(train_items)):
        raise ParameterError(f"batch size must be 1..{len(train_items)} (the number of train items), "
                             f"got {batch_size!r}")
    if model.mask is not None:
        layout = frae_layout(FraeConfig.from_dict(model.config))
        eligible = eligible_mask(layout, spec.scope)
        if not np.any(model.mask & eligible):
            raise ParameterError(f"{model.path}: its mask has already pruned every {spec.scope} weight; "
                                 "nothing is left to prune or train")


def run_protocol(model: ModelFile, spec: RunSpec, run_dir: str | os.PathLike, *,
                 train_items: Sequence[Any], eval_items: Sequence[Any],
                 gains: Gains | None = None, batch_size: int | None = None,
                 checkpoint_every: int = 25, resume: bool = False,
                 progress: Callable[[str], ProgressFn | None] | None = None,
                 dataset: dict[str, Any] | None = None,
                 export_part: str | None = None,
                 finetune_average: float | None = None,
                 precision: str = "float64") -> dict[str, Any]:
    """Run ``spec`` from ``model`` in ``run_dir``; return (and write) its figures.

    ``dataset``: the record of the dataset the items come from (:meth:`pa_ci.data.Dataset.record`),
    kept in run.json, result.json and the model files; a resume must use the same key.

    ``progress(stage)`` returns the progress callback of a stage ("pa", "finetune") or None.
    With ``resume``, finished stages are reused and an interrupted one continues from its
    checkpoint; without it, a folder holding a run is an error.

    ``export_part`` (e.g. the scope): also write ``RUN/<part>.pacx`` from the final model
    (:func:`pa_ci.codec.coder.export_run_model`) and add where and how big to the returned
    figures (result.json keeps the run's own figures).

    ``finetune_average`` (a fraction in (0, 1], beyond the paper): the fine-tuning stage also
    averages its last ``finetune_average`` x its iterations (iterate averaging,
    :class:`pa_ci.train.spsa.Spsa`), and the figures add ``vstoi_finetuned_mean`` (test) and
    ``train_vstoi_finetuned_mean`` of that mean. The run's model and ``vstoi_finetuned`` stay the
    last iterate, the paper's protocol, so one run gives both.

    ``precision``: the SPSA objective's forward pass (:class:`pa_ci.train.training.TrainOptions`);
    every reported VSTOI is the float64 codec's.
    """
    result = _run_protocol(model, spec, run_dir, train_items=train_items, eval_items=eval_items,
                           gains=gains, batch_size=batch_size, checkpoint_every=checkpoint_every,
                           resume=resume, progress=progress, dataset=dataset,
                           finetune_average=finetune_average, precision=precision)
    if export_part is None:
        return result
    return {**result, **export_run_model(run_dir, export_part, source=model.path)}


def _run_protocol(model: ModelFile, spec: RunSpec, run_dir: str | os.PathLike, *,
                  train_items: Sequence[Any], eval_items: Sequence[Any], gains: Gains | None,
                  batch_size: int | None, checkpoint_every: int, resume: bool,
                  progress: Callable[[str], ProgressFn | None] | None,
                  dataset: dict[str, Any] | None,
                  finetune_average: float | None = None,
                  precision: str = "float64") -> dict[str, Any]:
    t0 = time.monotonic()
    average_from = _average_from(finetune_average, spec.finetune_total)
    run = Path(run_dir)
    result_path = run / "result.json"
    gains = gains or Gains()
    config = FraeConfig.from_dict(model.config)
    layout = frae_layout(config)
    if model.layout != layout:
        raise ParameterError(f"{model.path}: the model's layout is not the FRAE layout of its config")
    _check_before_claiming(model, spec, train_items, eval_items, batch_size, checkpoint_every)
    spec_record = _spec_record(run, spec, resume)
    describe = {"spec": spec_record, "gains": gains.to_dict(), "batch_size": batch_size,
                "model_hash": model.hash}
    if finetune_average is not None:    # runs without it keep the record they had
        describe["finetune_average"] = finetune_average
    if precision != "float64":          # runs without it keep the record they had
        describe["precision"] = precision
    stage_kwargs, model_meta = record_dataset(describe, dataset)
    with claim_folder(run, "pruning run", TrainingError):
        if open_run_folder(run, describe, resume, what="pruning run") and result_path.exists():
            try:
                return json.loads(result_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                raise TrainingError(f"{result_path}: unreadable run result (corrupt or edited); "
                                    "delete it and --resume again to recompute it from the "
                                    "finished stages") from None

        evaluator = VstoiObjective(eval_items, config)
        eligible = eligible_mask(layout, spec.scope)
        old_keep = model.mask if model.mask is not None else np.ones(layout.size, dtype=bool)

        def score(theta: np.ndarray) -> float:
            return float(evaluator.evaluate(theta).mean())

        theta = np.array(model.theta, dtype=np.float64)
        vstoi_before = score(theta)
        train_vstoi: dict[str, float] = {}
        common = dict(gains=gains, batch_size=batch_size, warm_start_steps=0,
                      checkpoint_every=checkpoint_every, precision=precision)
        if spec.method == "pa":
            record = {"stage": "pa", "init": model.hash, **spec_record}
            pa = train_stage(run, "pa", train_items, theta, config,
                             TrainOptions(iters=spec.pa_iters, seed=spec.seed, **common), record, resume,
                             progress("pa") if progress else None,
                             mask=None if model.mask is None else old_keep,
                             wrap_objective=lambda f: PruningAwareObjective(
                                 f, eligible, spec.rate, g=spec.g, n_max=spec.pa_iters,
                                 lam=spec.lam), **stage_kwargs)
            theta = pa.theta
            train_vstoi["train_vstoi_pa"] = float(pa.meta["train_vstoi"])
            vstoi_pa = score(theta)
        else:
            vstoi_pa = vstoi_before

        keep = magnitude_mask(theta, layout, spec.scope, spec.rate) & old_keep
        pruned = np.where(keep, theta, 0.0)
        save_model(run / "pruned.npz", pruned, layout, config.to_dict(),
                   {"stage": "pruned", **spec_record, **model_meta}, mask=keep)
        vstoi_pruned = score(pruned)

        record = {"stage": "finetune", "init": "pruned", **spec_record}
        if spec.finetune_total > 0:
            ft = train_stage(run, "finetune", train_items, pruned, config,
                             TrainOptions(iters=spec.finetune_total,
                                          seed=spec.seed + FINETUNE_SEED_OFFSET,
                                          average_from=average_from, **common),
                             record, resume, progress("finetune") if progress else None, mask=keep,
                             **stage_kwargs)
            if average_from is not None:    # ft is the mean of the iterates; the paper's: the last
                train_vstoi.update(finetune_average=finetune_average,
                                   vstoi_finetuned_mean=score(ft.theta),
                                   train_vstoi_finetuned_mean=float(ft.meta["train_vstoi"]))
                ft = load_model(run / "finetune" / LAST_ITERATE)
            final = ft.theta
            train_vstoi["train_vstoi_finetuned"] = float(ft.meta["train_vstoi"])
        else:
            final = pruned
        vstoi_finetuned = score(final)
        counts = part_counts(final, config)
        n_elig = int(eligible.sum())
        result = {**spec_record, "finetune_total": spec.finetune_total,
                  "vstoi_before": vstoi_before, "vstoi_pa": vstoi_pa, "vstoi_pruned": vstoi_pruned,
                  "vstoi_finetuned": vstoi_finetuned,
                  "eligible_weights": n_elig,
                  "nonzero_weights": int(np.count_nonzero(final[eligible])),
                  **counts, **train_vstoi,
                  "eval_items": len(eval_items), "train_items": len(train_items),
                  "batch_size": batch_size, "gains": gains.to_dict(),
                  "model_hash": model.hash, "seconds": round(time.monotonic() - t0, 3)}
        if dataset is not None:
            result["dataset"] = dict(dataset)
        meta = {"protocol": {k: v for k, v in result.items() if k not in ("seconds", "dataset")},
                **model_meta}
        save_model(run / "model.npz", final, layout, config.to_dict(), meta, mask=keep)
        write_text_atomic(result_path, json.dumps(result, indent=2, sort_keys=True) + "\n")
        return result


def _average_from(fraction: float | None, finetune_total: int) -> int | None:
    """The fine-tuning iteration from which the last ``fraction`` of ``finetune_total`` are
    averaged (at least the last one); None without averaging."""
    if fraction is None:
        return None
    if not is_real(fraction) or not 0 < fraction <= 1:
        raise ParameterError(f"finetune average is {fraction!r}; expected a fraction in (0, 1] "
                             "of the fine-tuning iterations")
    return finetune_total - max(1, round(fraction * finetune_total))


def run_one(spec: RunSpec, job: JobContext) -> dict[str, Any]:
    """A sweep task: run ``spec`` from the job's model on the job's dataset.

    Runs in a worker process (or on a Dask worker): loads the job's dataset folder, or builds the
    default (or tiny) dataset from the bundled data (or loads it from the worker's cache), checks
    its key against the job's, and returns the figures of :func:`run_protocol` (the dataset by
    its key, ``dataset_key``, one column of the sweep table).
    """
    ds = job.dataset()
    model = job.model()
    kwargs = dict(train_items=ds.train, eval_items=ds.test, gains=Gains.from_dict(job.gains),
                  batch_size=job.batch_size, checkpoint_every=job.checkpoint_every,
                  dataset=ds.record(), finetune_average=job.finetune_average,
                  precision=job.precision)
    if job.work_dir is None:
        with tempfile.TemporaryDirectory(prefix="pa-ci-run-") as tmp:
            result = run_protocol(model, spec, Path(tmp) / spec.key(), **kwargs)
    else:
        result = run_protocol(model, spec, Path(job.work_dir) / spec.key(), resume=True, **kwargs)
    result = dict(result)
    result["dataset_key"] = (result.pop("dataset", None) or {}).get("key")
    return result
