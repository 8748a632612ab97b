"""The ``pa-ci sensitivity`` workflow: a model's per-tensor sensitivity curves, the proposed levels
and SensitivityPruner multipliers, and the files that record them.

The analysis itself (Distiller's ``perform_sensitivity_analysis``), the proposals and the
schedule writer are :mod:`pa_ci.prune.sensitivity`; this module runs them on a model file with
the mean-VSTOI metric (paper §II-C) and writes ``sensitivity.csv``, ``sensitivity.png``,
``proposed_schedule.yaml`` and ``config.json``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .._files import write_text_atomic
from ..errors import PaCiError
from .sensitivity import (SensitivityRow, analyze, plot, propose_for_sparsity, propose_levels,
                          propose_sensitivities, proposed_sparsity, schedule_yaml, sparsity_levels,
                          write_csv)

__all__ = ["SensitivityResult", "run_analysis"]


@dataclass
class SensitivityResult:
    """What :func:`run_analysis` found: the rows, the unpruned metric and the proposal.

    ``config`` is what ``config.json`` records (model, range, levels, tensors, split, items,
    metric, reference, tolerance, target sparsity, dataset); :meth:`write` writes the files.
    """

    rows: list[SensitivityRow]
    reference: float
    metric_name: str
    proposed: dict[str, float]
    sensitivities: dict[str, float]
    proposed_sparsity: float
    tolerance: float
    comment: str
    config: dict

    def write(self, out_dir: str | os.PathLike) -> dict[str, str | None]:
        """Write ``sensitivity.csv``, ``sensitivity.png`` (None without matplotlib: then
        ``"warning"`` says why), ``proposed_schedule.yaml`` and ``config.json`` into ``out_dir``;
        return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, str | None] = {"csv": str(out / "sensitivity.csv"),
                                        "png": str(out / "sensitivity.png"),
                                        "proposed_schedule": str(out / "proposed_schedule.yaml"),
                                        "warning": None}
        write_csv(self.rows, out / "sensitivity.csv")
        try:
            plot(self.rows, out / "sensitivity.png", metric_name=self.metric_name,
                 reference=self.reference)
        except PaCiError as exc:     # matplotlib missing: the CSV is the result
            paths["png"], paths["warning"] = None, str(exc)
        write_text_atomic(out / "proposed_schedule.yaml",
                          schedule_yaml(self.sensitivities, comment=self.comment))
        write_text_atomic(out / "config.json", json.dumps(self.config, indent=2) + "\n")
        return paths

    def to_dict(self, paths: Mapping[str, str | None] | None = None) -> dict:
        """The figures as one JSON-able dict: the config, the written files' ``paths`` (csv,
        png, proposed_schedule) when given, the proposal and the rows."""
        files = {k: paths[k] for k in ("csv", "png", "proposed_schedule")} if paths else {}
        return {**self.config, **files, "proposed_levels": self.proposed,
                "proposed_sensitivities": self.sensitivities,
                "proposed_sparsity": self.proposed_sparsity,
                "rows": [{"tensor": r.tensor, "sparsity": r.sparsity, "metric": r.metric}
                         for r in self.rows]}


def run_analysis(model, items: Sequence, *, sense_range: tuple[float, float, float] = (0.0, 0.95, 0.05),
                 tensors: Sequence[str] | None = None, split: str = "train", extended: bool = False,
                 tolerance: float = 0.01, target_sparsity: float | None = None,
                 dataset: dict | None = None, tiny: bool = False,
                 progress: Callable[[int, int, str], None] | None = None) -> SensitivityResult:
    """The whole sensitivity workflow of ``pa-ci sensitivity`` on a model file's ``model``
    (:class:`pa_ci.codec.model_file.ModelFile`): each tensor alone pruned to each level of
    ``sense_range`` (START STOP STEP) and scored by mean VSTOI (ESTOI with ``extended``) over
    ``items``; per tensor the largest level within ``tolerance`` of the unpruned model (or the
    smallest tolerance reaching ``target_sparsity``), and the SensitivityPruner multipliers s
    that prune those levels (Distiller's schedule format). ``split``, ``dataset`` (its record)
    and ``tiny`` are recorded only."""
    from ..codec.frae import FraeConfig
    from ..train.objective import VstoiObjective
    levels = sparsity_levels(*sense_range)
    for name in tensors or ():      # a bad name fails before any scoring
        model.layout[name]
    objective = VstoiObjective(items, FraeConfig.from_dict(model.config), extended=extended)
    metric_name = "ESTOI" if extended else "VSTOI"
    reference = float(objective(model.theta[None, :], 0)[0])
    rows = analyze(model.theta, model.layout, lambda th: float(objective(th[None, :], 0)[0]),
                   levels, tensors=tensors, batch_metric=lambda ths: objective(ths, 0),
                   progress=progress)
    if target_sparsity is None:
        proposed = propose_levels(rows, tolerance, reference=reference)
    else:
        proposed, tolerance = propose_for_sparsity(rows, target_sparsity, reference=reference)
    overall = proposed_sparsity(rows, proposed)
    s_values = propose_sensitivities(model.theta, model.layout, proposed)
    how = f"--tolerance {tolerance:g}" if target_sparsity is None else \
        f"--target-sparsity {target_sparsity:g} (tolerance {tolerance:.4f})"
    comment = (f"Proposed by: pa-ci sensitivity --range {' '.join(f'{v:g}' for v in sense_range)} "
               f"--split {split} {how}\nModel {model.path} ({model.hash}); "
               f"per tensor the largest level whose {metric_name} stays within {tolerance:g} of "
               f"{reference:.4f}.\nApplied in one pruning event; s x std prunes these levels on this model:\n"
               + "\n".join(f"  {t}: level {proposed[t]:g}" for t in proposed)
               + f"\nOverall sparsity of these tensors: {overall:.4f}")
    config = {"model": str(model.path), "model_hash": model.hash, "range": list(sense_range),
              "levels": levels, "tensors": sorted({r.tensor for r in rows}), "split": split,
              "items": len(items), "metric": metric_name, "reference": reference,
              "tolerance": tolerance, "target_sparsity": target_sparsity, "tiny": tiny,
              "dataset": dataset}
    return SensitivityResult(rows, reference, metric_name, proposed, s_values, overall,
                             tolerance, comment, config)
