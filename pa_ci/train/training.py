"""Training runs: seed -> initial FRAE -> warm start -> SPSA on mean VSTOI, with checkpoints.

A run lives in one folder::

    RUN/config.json      what was asked (FRAE config, options, dataset), written first
    RUN/checkpoint.npz   theta + SPSA state (iteration, RNG state), every ``checkpoint_every``
    RUN/log.csv          one row per SPSA iteration (gains, y+, y-, VSTOI, seconds)
    RUN/model.npz        the trained model (pa_ci.codec.layout format), written at the end

Everything in the ``.npz`` files is a deterministic function of the config and seed (no
timestamps), so two runs with the same seed are bit-identical, and a run that is interrupted
(Ctrl-C or kill) and resumed with ``resume=True`` ends with the same parameters as an
uninterrupted one. Ctrl-C or SIGTERM lets the running SPSA iteration finish, writes a checkpoint
there and stops (a second signal stops at once, keeping the last checkpoint); a hard kill
(SIGKILL, power loss) loses at most ``checkpoint_every`` iterations. Either way the resumed run
is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import __version__
from .._files import atomic_path, claim_folder, write_error, write_text_atomic
from ..run_folder import check_folder, check_resume, dataset_key_of, holds_files, same_dataset
from ..errors import ModelFileError, ParameterError, TrainingError
from ..progress import ProgressFn
from ..codec.config import check_precision
from ..codec.frae import FraeConfig, frae_layout, init_params
from .objective import VstoiObjective
from ..codec.model_file import MODEL_FILENAME, ModelFile, load_model, save_model
from .spsa import MAX_ITERATIONS, Gains, Spsa, calibrate


#: Largest first step per weight that Spall's calibration (--calibrate) may aim at: the trained
#: weights are of order 1, so a larger first step only makes the gains overflow.
MAX_CALIBRATION_STEP = 100.0

LOG_FIELDS = ("k", "a_k", "c_k", "y_plus", "y_minus", "vstoi", "accepted", "step_norm", "seconds")


@dataclass(frozen=True)
class TrainOptions:
    """What ``pa-ci train`` does; the defaults are the paper's SPSA gains (§II-C, Eq. 7).

    ``warm_start_steps``: Adam steps of the frame-MSE warm start before SPSA (0 = none; see
    :mod:`pa_ci.train.warmstart`). ``batch_size``: items per SPSA evaluation (None = the whole train
    set, as the paper). ``averaging``/``blocking``: Spall's gradient averaging and loss-based
    blocking (:class:`pa_ci.train.spsa.Spsa`). ``calibrate_step``: replace the gains' a and A by
    Spall's calibration (:func:`pa_ci.train.spsa.calibrate`: A = 0.1 iters, a such that the first
    step moves each weight by about this much), keeping c, alpha and gamma.
    ``first_iteration``: the gain index k of the first iteration, so that a run continuing
    another (one epoch of a compression schedule, :mod:`pa_ci.prune.schedule_run`) keeps the gain
    sequences a_k, c_k and the mini-batch draws going instead of restarting them at k = 0.
    ``average_from``: iterate averaging (:class:`pa_ci.train.spsa.Spsa`) over the iterations
    from this one of the run on (0: all); the model saved is then the mean of those iterates,
    and ``last.npz`` (:data:`LAST_ITERATE`) the last iterate.
    ``precision``: the arithmetic of the FRAE forward pass in the SPSA objective
    (:data:`pa_ci.codec.config.PRECISIONS`): ``"float32"`` is faster; the log's y+/y- are then
    float32 figures, while ``vstoi_initial`` and ``train_vstoi`` in the model's meta are always
    the float64 codec's.
    """

    iters: int = 1000
    seed: int = 0
    gains: Gains = field(default_factory=Gains)
    batch_size: int | None = None
    averaging: int = 1
    blocking: float | None = None
    checkpoint_every: int = 25
    warm_start_steps: int = 400
    extended: bool = False
    calibrate_step: float | None = None
    first_iteration: int = 0
    average_from: int | None = None
    precision: str = "float64"

    def __post_init__(self) -> None:
        for name, top in (("iters", MAX_ITERATIONS), ("first_iteration", MAX_ITERATIONS),
                          ("warm_start_steps", MAX_ITERATIONS), ("seed", 2 ** 63 - 1),
                          ("checkpoint_every", MAX_ITERATIONS), ("averaging", 1000)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v > top:
                raise ParameterError(f"{name.replace('_', ' ')} is {v!r}; expected an integer "
                                     f"of at most {top}")
        if self.seed < 0:
            raise ParameterError(f"seed must be >= 0, got {self.seed}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(
                self.batch_size, (int, np.integer)) or self.batch_size < 1):
            raise ParameterError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if self.blocking is not None and not (math.isfinite(self.blocking) and self.blocking >= 0):
            raise ParameterError(f"blocking threshold must be a finite number >= 0, got {self.blocking!r}")
        if self.calibrate_step is not None and not (0 < self.calibrate_step <= MAX_CALIBRATION_STEP):
            raise ParameterError(f"calibration step must be a number in (0, {MAX_CALIBRATION_STEP:g}], "
                                 f"got {self.calibrate_step!r}")
        if self.iters < 0:
            raise ParameterError(f"iterations must be >= 0, got {self.iters}")
        if self.checkpoint_every < 1:
            raise ParameterError(f"checkpoint interval must be >= 1, got {self.checkpoint_every}")
        if self.warm_start_steps < 0:
            raise ParameterError(f"warm-start steps must be >= 0, got {self.warm_start_steps}")
        if self.averaging < 1:
            raise ParameterError(f"averaging must be >= 1, got {self.averaging}")
        if self.calibrate_step is not None and not self.calibrate_step > 0:
            raise ParameterError(f"calibration step must be > 0, got {self.calibrate_step}")
        if self.first_iteration < 0:
            raise ParameterError(f"first iteration must be >= 0, got {self.first_iteration}")
        if self.average_from is not None and (isinstance(self.average_from, bool) or not isinstance(
                self.average_from, (int, np.integer)) or not 0 <= self.average_from <= MAX_ITERATIONS):
            raise ParameterError(f"average from is {self.average_from!r}; expected an iteration "
                                 f"0..{MAX_ITERATIONS}")
        check_precision(self.precision)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["gains"] = self.gains.to_dict()
        if not self.first_iteration:        # runs recorded before these fields existed stay equal
            del d["first_iteration"]
        if self.average_from is None:
            del d["average_from"]
        if self.precision == "float64":
            del d["precision"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainOptions:
        d = dict(d)
        d["gains"] = Gains.from_dict(d.get("gains", {}))
        return cls(**d)


# ----------------------------------------------------------------------------- initial model
#: With iterate averaging, the run folder's file of the last iterate (model.npz is the mean).
LAST_ITERATE = "last.npz"


def initial_model(config: FraeConfig, patterns: Sequence[np.ndarray], options: TrainOptions,
                  progress: ProgressFn | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Seeded initialisation, codebook from k-means of the latents, optional MSE warm start."""
    from .warmstart import WarmStartOptions, init_codebook, warm_start

    theta = init_params(config, options.seed)
    info: dict[str, Any] = {}
    if options.warm_start_steps > 0:
        ws = WarmStartOptions(steps=options.warm_start_steps, seed=options.seed)
        theta, history = warm_start(theta, config, list(patterns), ws, progress=progress)
        info["warm_start"] = {"steps": options.warm_start_steps,
                              "frame_mse": history[-1].get("frame_mse") if history else None}
    else:
        theta = init_codebook(theta, config, list(patterns), seed=options.seed)
    return theta, info


# ----------------------------------------------------------------------------- run folder
def _config_record(config: FraeConfig, options: TrainOptions, dataset_info: dict[str, Any],
                   init: str | None, stage: dict[str, Any] | None = None) -> dict[str, Any]:
    record = {"frae": config.to_dict(), "train": options.to_dict(), "dataset": dataset_info,
              "init": init, "pa_ci_version": __version__}
    if stage is not None:
        record["stage"] = stage
    return record


def record_dataset(describe: dict[str, Any], dataset: dict[str, Any] | None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A multi-stage run's dataset records: adds ``dataset`` to ``describe`` (run.json) and returns
    the stages' keyword arguments (``dataset_info``, split train) and the models' meta (no path)."""
    if dataset is None:
        return {}, {}
    describe["dataset"] = dict(dataset)
    return ({"dataset_info": {**dataset, "split": "train"}},
            {"dataset": {k: v for k, v in dataset.items() if k != "path"}})


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Name the first setting (other than the iteration count) that differs, or None."""
    for key in ("frae", "dataset", "init", "stage"):
        if key == "dataset":
            if not same_dataset(old.get(key), new.get(key)):
                return key
        elif old.get(key) != new.get(key):
            return key
    a, b = dict(old.get("train", {})), dict(new.get("train", {}))
    a.pop("iters", None)
    b.pop("iters", None)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"train.{key}"
    return None


def _save_checkpoint(path: Path, spsa: Spsa, info: dict[str, Any]) -> None:
    state = spsa.state_dict()
    header = {k: v for k, v in state.items() if k not in ("theta", "mask", "iterate_mean")}
    header["info"] = info
    arrays = {"theta": state["theta"], "header": np.array(json.dumps(header, sort_keys=True))}
    for name in ("mask", "iterate_mean"):
        if state.get(name) is not None:
            arrays[name] = state[name]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"][()]))
            state = dict(header)
            state["theta"] = np.array(z["theta"], dtype=np.float64)
            state["mask"] = np.array(z["mask"], dtype=bool) if "mask" in z.files else None
            state["iterate_mean"] = (np.array(z["iterate_mean"], dtype=np.float64)
                                     if "iterate_mean" in z.files else None)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ModelFileError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc}); "
                             "delete it to start the run again") from None
    info = state.pop("info", {})
    return state, info


def _truncate_log(path: Path, upto: int) -> None:
    """Keep the log rows of iterations < ``upto`` (a resumed run rewrites the lost ones)."""
    if not path.exists():
        return
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows and any(v is None for v in rows[-1].values()):
            rows.pop()  # a row cut short by a crash or a full disk (after the checkpoint)
        if rows and set(rows[0]) != set(LOG_FIELDS):
            raise ValueError("columns")
        rows = [r for r in rows if int(r["k"]) < upto]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, csv.Error):
        raise TrainingError(f"{path}: not a pa-ci training log (corrupt or edited); the checkpoint "
                            "is intact: move the log aside and --resume again (its rows before "
                            "the checkpoint are then lost), or start a new run") from None
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


class _Interrupts:
    """Ctrl-C (SIGINT) and SIGTERM while training, deferred to the end of the running iteration.

    A signal that arrived in the middle of an SPSA step (after its random draws, before its
    update or its log row) must not leave a checkpoint of that half-done state: the handler only
    records it, and the training loop stops at the next iteration boundary (:meth:`check`),
    where theta, the RNG state, k and the log agree, so the checkpoint written there resumes
    bit-identically. A second signal stops at once (the last checkpoint is kept).
    """

    def __init__(self) -> None:
        self.requested: int | None = None

    def _handler(self, signum, frame) -> None:  # noqa: ANN001
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal arrived (call at an iteration boundary)."""
        if self.requested is not None:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        """The handlers while the block runs; a signal that arrived after the block's last
        :meth:`check` is raised when the block ends normally, never lost."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.check()


def train(run_dir: str | os.PathLike, train_items: Sequence[Any], *,
          config: FraeConfig | None = None, options: TrainOptions | None = None,
          dataset_info: dict[str, Any] | None = None, init_theta: np.ndarray | None = None,
          init_name: str | None = None, resume: bool = False,
          progress: ProgressFn | None = None, warm_start_progress: ProgressFn | None = None,
          ace_params=None, mask: np.ndarray | None = None,
          wrap_objective: Callable[[VstoiObjective], Any] | None = None,
          stage: dict[str, Any] | None = None) -> Path:
    """Train an FRAE by SPSA on mean VSTOI over ``train_items``; returns the model path.

    ``init_theta`` (e.g. the shipped model) replaces the seeded initialisation and warm start.
    ``progress(done, total, info)`` is called after every SPSA iteration (info: "it K VSTOI v"),
    ``warm_start_progress`` after every warm-start step.

    Pruning (:mod:`pa_ci.experiment.protocol`): ``mask`` (bool, True = trainable) keeps the other entries
    fixed (pruned weights stay exactly 0) and is saved with the model; ``wrap_objective`` turns
    the mean-VSTOI objective into the one SPSA maximises (e.g. Eq. 5,
    :class:`pa_ci.prune.pruning_aware.PruningAwareObjective`); the log's y+/y- are then that
    objective's values and its ``vstoi`` column the base objective's mean (when the wrapper has
    ``last_base``).
    ``stage`` is recorded in ``config.json`` and must match on resume.
    ``dataset_info`` (e.g. :meth:`pa_ci.data.Dataset.record` plus the split) is recorded in
    ``config.json``; a resume must use the dataset of the same ``key`` (the content hash; the
    folder it is read from may differ), and the model's meta gets ``dataset``: key and counts.
    """
    config = config or FraeConfig()
    options = options or TrainOptions()
    run = check_folder(run_dir, "train -o names a run folder")
    record = _config_record(config, options, dataset_info or {}, init_name, stage)
    cfg_path, ckpt_path, log_path, model_path = (run / "config.json", run / "checkpoint.npz",
                                                 run / "log.csv", run / "model.npz")
    layout = frae_layout(config)
    vstoi = VstoiObjective(train_items, config, ace_params, batch_size=options.batch_size,
                           seed=options.seed, extended=options.extended,
                           precision=options.precision)
    objective = vstoi if wrap_objective is None else wrap_objective(vstoi)

    with claim_folder(run, "training run", TrainingError):
        check_resume(run, "config.json", record, resume, what="training run",
                     holds=ckpt_path.exists() or model_path.exists(), differs=_same_run,
                     unreadable=" this run")
        run.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cfg_path, json.dumps(record, indent=2, sort_keys=True) + "\n")

        if resume and ckpt_path.exists():
            state, info = _load_checkpoint(ckpt_path)
            if state["theta"].shape != (layout.size,):
                raise ModelFileError(f"{ckpt_path}: {state['theta'].size} parameters, the config needs "
                                     f"{layout.size}")
            spsa = Spsa.from_state(objective, state)
        else:
            if init_theta is not None:
                theta0, info = np.array(init_theta, dtype=np.float64), {"init": init_name}
            else:
                theta0, info = initial_model(config, [it.pattern for it in train_items], options,
                                             progress=warm_start_progress)
            info = dict(info)
            gains = options.gains
            if options.calibrate_step is not None:
                g = options.gains
                gains = calibrate(objective, theta0, n_iters=max(options.iters, 1),
                                  target_step=options.calibrate_step, averaging=options.averaging,
                                  seed=options.seed, c=g.c, alpha=g.alpha, gamma=g.gamma)
                info["calibrated_gains"] = gains.to_dict()
            spsa = Spsa(objective, theta0, gains=gains, maximize=True, seed=options.seed,
                        averaging=options.averaging, blocking=options.blocking, mask=mask,
                        average_from=None if options.average_from is None
                        else options.first_iteration + options.average_from)
            spsa.k = options.first_iteration
            info["vstoi_initial"] = float(vstoi.evaluate(spsa.theta).mean()) \
                if options.batch_size is None else None
            _save_checkpoint(ckpt_path, spsa, info)
            if log_path.exists():
                log_path.unlink()
        _truncate_log(log_path, spsa.k)

        start_k, t0 = spsa.k, time.monotonic()
        end_k = options.first_iteration + options.iters
        new_log = not log_path.exists()
        try:
            with _Interrupts().installed() as interrupts, open(log_path, "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS, lineterminator="\n")
                if new_log:
                    writer.writeheader()
                consistent = True  # theta, RNG state, k and the log rows agree (a checkpoint may be taken)
                try:
                    while spsa.k < end_k:
                        consistent = False
                        rec = spsa.step()
                        current = getattr(objective, "last_base", 0.5 * (rec.y_plus + rec.y_minus))
                        writer.writerow({"k": rec.k, "a_k": f"{rec.a_k:.6g}", "c_k": f"{rec.c_k:.6g}",
                                         "y_plus": f"{rec.y_plus:.6f}", "y_minus": f"{rec.y_minus:.6f}",
                                         "vstoi": f"{current:.6f}",
                                         "accepted": int(rec.accepted), "step_norm": f"{rec.step_norm:.4g}",
                                         "seconds": f"{time.monotonic() - t0:.3f}"})
                        consistent = True
                        if spsa.k % options.checkpoint_every == 0 or spsa.k == end_k:
                            fh.flush()
                            _save_checkpoint(ckpt_path, spsa, info)
                        if progress is not None:
                            info_text = f"it {spsa.k} VSTOI {current:.4f}"
                            if hasattr(objective, "last_perturbed"):
                                info_text += f" pruned {objective.last_perturbed:.4f}"
                            progress(spsa.k - start_k, end_k - start_k, info_text)
                        interrupts.check()
                except KeyboardInterrupt:
                    if consistent:  # else the last periodic checkpoint stands (resume truncates the log)
                        fh.flush()
                        _save_checkpoint(ckpt_path, spsa, info)
                    raise
        except OSError as exc:  # the log: disk full, read-only, ... (the checkpoint stays resumable)
            raise write_error(log_path, exc) from None
        meta = {"seed": options.seed, "iterations": int(spsa.k - options.first_iteration),
                "train_vstoi": float(vstoi.evaluate(spsa.theta).mean()),
                "train_items": vstoi.n_items, **{k: v for k, v in info.items() if v is not None}}
        if dataset_key_of(dataset_info) is not None:   # which data (not where it was read)
            meta["dataset"] = {k: v for k, v in dataset_info.items()
                               if k in ("key", "n_train", "n_test")}
        if stage is not None:
            meta["stage"] = stage
        if spsa.iterate_mean is None:
            return save_model(model_path, spsa.theta, layout, config.to_dict(), meta, mask=spsa.mask)
        # iterate averaging: the model is the mean of the iterates, last.npz the last iterate
        save_model(run / LAST_ITERATE, spsa.theta, layout, config.to_dict(), meta, mask=spsa.mask)
        mean_meta = {**meta, "train_vstoi": float(vstoi.evaluate(spsa.iterate_mean).mean()),
                     "iterate_mean": {"from": options.average_from, "iterates": spsa.n_averaged,
                                      "train_vstoi_last_iterate": meta["train_vstoi"]}}
        return save_model(model_path, spsa.iterate_mean, layout, config.to_dict(), mean_meta,
                          mask=spsa.mask)


def train_stage(run_dir: Path, name: str, train_items: Sequence[Any], theta: np.ndarray,
                config: FraeConfig, options: TrainOptions, record: dict, resume: bool,
                progress: ProgressFn | None, **kwargs: Any) -> ModelFile:
    """One stage of a multi-stage run (a PA phase, a fine-tuning, an epoch of a schedule).

    Trains from ``theta`` in ``run_dir/name`` and returns the stage's model. With ``resume``, a
    finished stage whose recorded ``record`` matches is reused, an interrupted one continues.
    """
    folder = Path(run_dir) / name
    if (folder / MODEL_FILENAME).exists() and resume:
        done = load_model(folder / MODEL_FILENAME, frae_layout(config))
        if done.meta.get("stage") == record:
            return done
    path = train(folder, train_items, config=config, options=options, init_theta=theta,
                 init_name=record.get("init"), resume=resume, progress=progress, stage=record,
                 **kwargs)
    return load_model(path, frae_layout(config))


def open_run_folder(run_dir: str | os.PathLike, describe: dict[str, Any], resume: bool, *,
                    what: str = "run", ignore: Sequence[str] = ()) -> bool:
    """Claim ``run_dir`` for a multi-stage run described by ``describe`` (written to run.json).

    A folder holding a run is an error without ``resume``, and with it when its run.json differs
    (:func:`pa_ci.run_folder.check_resume`; keys in ``ignore`` may differ, e.g. where the
    schedule file was read from). Returns whether the folder already held this run.
    """
    run = check_folder(run_dir)

    def differs(old: dict[str, Any], new: dict[str, Any]) -> str | None:
        keys = [k for k in {**new, **old} if k not in ignore]
        return next((k for k in keys if (not same_dataset(old.get(k), new.get(k))
                                         if k == "dataset" else old.get(k) != new.get(k))), None)

    existed = holds_files(run)
    check_resume(run, "run.json", describe, resume, what=what, holds=existed, differs=differs)
    run.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run / "run.json", json.dumps(describe, indent=2, sort_keys=True) + "\n")
    return existed
