"""The ledger of a sweep's results: ``results.csv`` (one row per finished run, rewritten
atomically after every finished run) and ``failed.json`` (key -> one-line error of the runs that
failed), kept in the main process as the runs finish (:class:`_Ledger`).

With how a value is written to the table (:func:`_cell`, :func:`_jsonable`) and read back
(:func:`read_results`), and its column and row order (:data:`LEADING_COLUMNS`). The executors
(:mod:`pa_ci.experiment.executors`) hand each outcome to the ledger; :func:`run_sweep
<pa_ci.experiment.sweep.run_sweep>` makes it. Imports neither of them.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._files import write_text_atomic
from ..errors import TrainingError
from ..progress import ProgressFn

__all__ = ["LEADING_COLUMNS", "read_results"]

#: Leading columns of ``results.csv``; every further key a run returns follows, sorted.
LEADING_COLUMNS: tuple[str, ...] = (
    "rate", "scope", "method", "g", "seed", "pa_iters", "finetune_iters",
    "vstoi_before", "vstoi_pa", "vstoi_pruned", "vstoi_finetuned")


# ----------------------------------------------------------------------------- values
def _one_line(exc: BaseException) -> str:
    """The error of a run as it is recorded: ``Type: message`` on one line, at most 500 characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def _jsonable(value: Any) -> Any:
    """A JSON-safe, repr-free stand-in of ``value`` (bytes and arrays by SHA-256 and size)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"sha256": hashlib.sha256(data.tobytes()).hexdigest(), "shape": list(data.shape),
                "dtype": str(data.dtype)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}"}


def _spec_dict(spec: Any) -> dict[str, Any]:
    if callable(getattr(spec, "to_dict", None)):
        return dict(spec.to_dict())
    return dataclasses.asdict(spec)


# ----------------------------------------------------------------------------- results table
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_jsonable(value), sort_keys=True)
    return str(value)


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _row_order(row: dict[str, str]) -> tuple:
    def num(name: str) -> float:
        try:
            return float(row.get(name, ""))
        except ValueError:
            return math.inf
    return (row.get("scope", ""), row.get("method", ""), row.get("g", ""), num("rate"),
            num("seed"), row.get("key", ""))


def _columns(rows: Iterable[dict[str, str]]) -> list[str]:
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    return list(LEADING_COLUMNS) + sorted(seen - set(LEADING_COLUMNS))


def _write_csv(path: Path, rows: dict[str, dict[str, str]]) -> None:
    ordered = sorted(rows.values(), key=_row_order)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(ordered), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(ordered)
    write_text_atomic(path, buffer.getvalue())


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "key" not in fields:
                raise TrainingError(f"{path}: not a pa-ci sweep table (no 'key' column)")
            return {row["key"]: {k: v for k, v in row.items() if v != ""} for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingError(f"{path}: cannot read the sweep table ({exc})") from None


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a sweep's ``results.csv`` (or of the folder holding it), numbers parsed."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.is_file():
        raise TrainingError(f"{path}: no sweep results (file missing)")
    rows = _read_csv(path)
    return [{k: _parse_cell(v) for k, v in row.items()}
            for row in sorted(rows.values(), key=_row_order)]


# ----------------------------------------------------------------------------- the ledger
class _Ledger:
    """Main-process book-keeping: rows, failures, the files, progress calls."""

    def __init__(self, out_dir: Path, rows: dict[str, dict[str, str]], total: int,
                 progress: ProgressFn | None) -> None:
        self.out_dir, self.rows, self.total, self.progress = out_dir, rows, total, progress
        self.done: list[str] = []
        self.failed: dict[str, str] = {}
        self.count = 0

    def finished(self, spec: Any, result: Any) -> None:
        key = spec.key()
        if not isinstance(result, dict):
            self.error(spec, TypeError(f"runner returned {type(result).__name__}, expected dict"))
            return
        row = _spec_dict(spec)
        row.update(result)
        row["key"] = key
        self.rows[key] = {str(k): _cell(v) for k, v in row.items() if v is not None}
        _write_csv(self.out_dir / "results.csv", self.rows)
        self.done.append(key)
        self.count += 1
        if self.progress is not None:
            self.progress(self.count, self.total, {
                "key": key, "vstoi_pruned": result.get("vstoi_pruned"),
                "vstoi_finetuned": result.get("vstoi_finetuned")})

    def error(self, spec: Any, exc: BaseException) -> None:
        key = spec.key()
        self.failed[key] = _one_line(exc)
        self.write_failed()
        self.count += 1
        if self.progress is not None:
            self.progress(self.count, self.total, {"key": key, "error": self.failed[key]})

    def write_failed(self) -> None:
        path = self.out_dir / "failed.json"
        if self.failed:
            write_text_atomic(path, json.dumps(self.failed, indent=1, sort_keys=True) + "\n")
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
