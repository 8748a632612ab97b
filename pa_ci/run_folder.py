"""A run folder and its resume check: the one rule of every run that writes a folder.

A folder holding a run (a training run's ``config.json``, a pruning or schedule run's
``run.json``, a sweep's ``sweep.json``) is continued only on request (``--resume``; a sweep
always resumes), and only with the settings it was started with: the first setting that
differs is named in a :class:`~pa_ci.errors.TrainingError`, the one error type of this check.
A dataset is the same when its key (content hash) is, whatever folder it is read from.
Claiming the folder for one process at a time is :func:`pa_ci._files.claim_folder`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from ._files import LOCK_NAME, claim_folder  # noqa: F401 - claim_folder: part of this API
from .errors import TrainingError

__all__ = ["check_folder", "check_resume", "holds_files", "read_record", "dataset_key_of", "same_dataset",
           "dataset_mismatch", "claim_folder"]


def dataset_key_of(record: Any) -> str | None:
    """The dataset key (content hash) a run record holds: ``record["key"]`` of a dataset record
    (:meth:`pa_ci.data.Dataset.record`), or None when none is recorded."""
    if isinstance(record, dict) and isinstance(record.get("key"), str):
        return record["key"]
    return None


def dataset_mismatch(run: str | os.PathLike, old: Any, new: Any) -> TrainingError:
    """The error of a run resumed on another dataset than the one it was started on."""
    was = dataset_key_of(old) or "(none recorded)"
    return TrainingError(f"{run}: was started on dataset {was}, not on dataset "
                         f"{dataset_key_of(new) or '(none recorded)'} (the one given now); resume "
                         "it with --dataset naming the dataset it was started on, or choose "
                         "another output folder")


def same_dataset(old: Any, new: Any) -> bool:
    """Datasets are the same when their keys are (a dataset is its content, not its folder)."""
    if dataset_key_of(old) is None and dataset_key_of(new) is None:
        return (old or {}) == (new or {})
    return dataset_key_of(old) == dataset_key_of(new)


def check_folder(run: str | os.PathLike, hint: str = "the output names a run folder") -> Path:
    """``run`` as a Path; a file of that name is an error (``hint`` says what the option names)."""
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise TrainingError(f"{run}: exists and is not a folder ({hint})")
    return run


def holds_files(run: Path) -> bool:
    """True when ``run`` exists and holds anything but the claim's lock file."""
    return run.exists() and any(p.name != LOCK_NAME for p in run.iterdir())


def read_record(path: Path, what: str = "") -> dict[str, Any]:
    """The JSON record of a run folder; missing or unreadable is the resume error."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise TrainingError(f"{path}: missing or unreadable; cannot resume{what}") from None


def check_resume(run: Path, record_file: str, new: dict[str, Any], resume: bool, *, what: str,
                 holds: bool, differs: Callable[[dict[str, Any], dict[str, Any]], str | None],
                 unreadable: str = "") -> dict[str, Any] | None:
    """The resume check of a folder that ``holds`` a run: without ``resume`` an error; with it,
    the record in ``run/record_file`` must match ``new`` (``differs(old, new)`` names the first
    setting that does not; ``"dataset"`` gets :func:`dataset_mismatch`). Returns the stored
    record, or None when the folder holds no run. ``unreadable`` ends the message of a missing
    record (e.g. ``" this run"``)."""
    if not holds:
        return None
    if not resume:
        raise TrainingError(f"{run}: already holds a {what}; add --resume to continue it, "
                            "or choose another output folder")
    old = read_record(run / record_file, unreadable)
    diff = differs(old, new)
    if diff == "dataset":
        raise dataset_mismatch(run, old.get("dataset"), new.get("dataset"))
    if diff is not None:
        raise TrainingError(f"{run}: was started with another {diff}; resume it with the same "
                            "settings or choose another output folder")
    return old
