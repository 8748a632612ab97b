"""The policy of a compression schedule: when one pruner (or LR scheduler) fires (:class:`Policy`).

Read from a schedule file's ``policies`` by :mod:`pa_ci.prune.schedule` (which re-exports it); the
pruners (:mod:`pa_ci.prune.pruners`) read a policy's epochs (the AGP ramp runs from its first
to its last). Imports neither of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Policy"]


@dataclass(frozen=True)
class Policy:
    """When one pruner (or LR scheduler) fires: sorted epochs and where the policy is written."""

    kind: str                 # "pruner" or "lr_scheduler"
    instance: str
    epochs: tuple[int, ...]
    line: int | None
    starting_epoch: int | None = None
    ending_epoch: int | None = None
    frequency: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "instance": self.instance, "epochs": list(self.epochs)}
        if self.starting_epoch is not None:
            d.update(starting_epoch=self.starting_epoch, ending_epoch=self.ending_epoch,
                     frequency=self.frequency)
        return d
