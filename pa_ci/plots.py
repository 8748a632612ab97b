"""Figures (matplotlib, the optional ``plot`` extra, imported lazily).

Every figure of the package, drawn from plain data (this module imports nothing of the layers,
so each of them can call it):

- :func:`signal_chain_figure`: one utterance's spectrogram, its ACE stimulation pattern (an
  electrodogram: channels over time, colour = LGF magnitude) and the spectrogram of the
  sine-vocoded pattern, i.e. what VSTOI compares with the clean speech (``pa-ci vocode --plot``);
- :func:`sensitivity_figure`: metric vs sparsity, one line per tensor (``pa-ci sensitivity``);
- :func:`sweep_figures`: the paper's Figs. 1-7 from a sweep's rows (``pa-ci sweep``).
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._files import atomic_path
from .errors import PaCiError
from .validate import number_or_nan as _number


def _pyplot() -> Any:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PaCiError("plotting needs matplotlib: pip install 'pa-ci[plot]'") from None
    return plt


def signal_chain_figure(path: str | os.PathLike, audio: np.ndarray, pattern: np.ndarray,
                        vocoded: np.ndarray, fs: float, frame_rate: float,
                        centre_frequencies: np.ndarray, title: str = "") -> None:
    """Write a PNG: input spectrogram, stimulation pattern, vocoded spectrogram (shared time axis)."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    spec_kw = dict(NFFT=256, noverlap=192, Fs=fs, cmap="magma", vmin=-120)
    # Exact zeros (silent stretches) would give log10(0): a seeded 1e-9 dither (-180 dB, far
    # below vmin) keeps every bin finite.
    dither = np.random.default_rng(0).standard_normal
    axes[0].specgram(np.asarray(audio) + 1e-9 * dither(len(audio)), **spec_kw)
    axes[0].set(ylabel="Hz", title=f"input{': ' + title if title else ''}")
    k = np.arange(pattern.shape[0] + 1) / frame_rate
    image = axes[1].pcolormesh(k, np.arange(pattern.shape[1] + 1) + 0.5, pattern.T,
                               cmap="viridis", vmin=0, vmax=1, shading="flat")
    ticks = [0, 4, 9, 13, 17, 21]
    axes[1].set_yticks([t + 1 for t in ticks],
                       [f"{t + 1} ({centre_frequencies[t]:.0f} Hz)" for t in ticks])
    axes[1].set(ylabel="channel", title="ACE stimulation pattern (LGF magnitude)")
    fig.colorbar(image, ax=axes[1], pad=0.01)
    axes[2].specgram(np.asarray(vocoded) + 1e-9 * dither(len(vocoded)), **spec_kw)
    axes[2].set(ylabel="Hz", xlabel="time (s)", title="sine-vocoded pattern (what VSTOI hears)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def sensitivity_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                       path: str | os.PathLike, *, metric_name: str = "VSTOI",
                       reference: float | None = None) -> None:
    """A PNG of ``metric_name`` vs sparsity, one line per tensor (``curves``: name ->
    (sparsities, metric values)), with a dashed line at ``reference`` (the unpruned model)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    try:
        for name, (sparsities, metrics) in curves.items():
            ax.plot(list(sparsities), list(metrics), marker="o", ms=3, label=name)
        if reference is not None:
            ax.axhline(float(reference), color="k", ls="--", lw=1, label="unpruned")
        ax.set(xlabel="sparsity of the tensor (others unpruned)", ylabel=metric_name,
               title=f"Pruning sensitivity: {metric_name} with one tensor pruned")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- sweep figures

def _curve(rows: Sequence[dict[str, Any]], column: str) -> tuple[np.ndarray, ...] | None:
    """Rates, seed mean, min, max of ``column`` (rows without a finite value are left out)."""
    by_rate: dict[float, list[float]] = defaultdict(list)
    for row in rows:
        value = _number(row.get(column))
        if math.isfinite(value):
            by_rate[_number(row.get("rate"))].append(value)
    if not by_rate:
        return None
    rates = np.array(sorted(by_rate))
    values = [by_rate[r] for r in rates]
    return (rates, np.array([np.mean(v) for v in values]), np.array([min(v) for v in values]),
            np.array([max(v) for v in values]))


def _select(rows: Sequence[dict[str, Any]], **want: str) -> list[dict[str, Any]]:
    return [r for r in rows if all(str(r.get(k)) == v for k, v in want.items())]


def _gs(rows: Sequence[dict[str, Any]], g_names: Sequence[str]) -> list[str]:
    present = {str(r.get("g")) for r in rows}
    known = [g for g in g_names if g in present]
    return known + sorted(present - set(known))


def _draw(ax: Any, curve: tuple[np.ndarray, ...], label: str) -> None:
    rates, mean, lo, hi = curve
    # The mean of equal values can differ from them in the last bit: clip the bars at 0.
    yerr = np.maximum([mean - lo, hi - mean], 0.0)
    line = ax.errorbar(rates, mean, yerr=yerr, marker="o", markersize=3,
                       capsize=2, label=label)
    if np.any(hi > lo):
        ax.fill_between(rates, lo, hi, alpha=0.15, color=line[0].get_color())


def sweep_figures(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike, *,
                  scopes: Sequence[str], g_names: Sequence[str]) -> list[Path]:
    """The paper's figures from sweep rows (:mod:`pa_ci.experiment.sweep`; mean over seeds,
    min-max bars and band); returns the PNGs written, ``[]`` when matplotlib is missing or nothing
    can be drawn. ``scopes`` and ``g_names`` give the order of panels and curves.

    baseline.png (Fig. 1: magnitude pruning per scope), pruned_whole.png / pruned_decoder.png
    (Figs. 2-4: magnitude vs PA per g after pruning), g_functions.png (Fig. 5: PA per g, needs
    two g), before_pruning.png (Fig. 6: PA after training, before pruning, and the unpruned
    model), finetuned.png (Fig. 7: after fine-tuning, per scope). A figure whose rows are absent
    is skipped.
    """
    try:
        plt = _pyplot()
    except PaCiError:
        return []
    rows = list(rows)
    out = Path(out_dir)
    written: list[Path] = []
    scopes = [s for s in scopes if _select(rows, scope=s)]

    def figure(name: str, panels: list[tuple[str, list[tuple[str, tuple | None]], Any]]) -> None:
        panels = [(t, [(lab, c) for lab, c in series if c is not None], extra)
                  for t, series, extra in panels]
        panels = [p for p in panels if p[1]]
        if not panels:
            return
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False,
                                 sharey=True, constrained_layout=True)
        for ax, (title, series, extra) in zip(axes[0], panels):
            for label, curve in series:
                _draw(ax, curve, label)
            if extra is not None:
                extra(ax)
            ax.set(title=title, xlabel="pruning rate")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("VSTOI")
        path = out / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        written.append(path)

    def pa_label(g: str) -> str:
        return f"pruning-aware (g={g})"

    # Fig. 1: the magnitude baseline, whole vs decoder (one panel, one curve per scope).
    baseline = [(s, _curve(_select(rows, scope=s, method="magnitude"), "vstoi_pruned"))
                for s in scopes]
    figure("baseline.png", [("magnitude pruning (baseline), after pruning", baseline, None)])
    # Figs. 2-4: after pruning, baseline vs PA, one figure per scope.
    for scope in scopes:
        pa_rows = _select(rows, scope=scope, method="pa")
        if not pa_rows:
            continue
        series = [("magnitude", _curve(_select(rows, scope=scope, method="magnitude"),
                                       "vstoi_pruned"))]
        series += [(pa_label(g), _curve(_select(pa_rows, g=g), "vstoi_pruned")) for g in _gs(pa_rows, g_names)]
        figure(f"pruned_{scope}.png", [(f"{scope}: after pruning", series, None)])
    # Fig. 5: the perturbation functions (only meaningful with at least two of them).
    panels = []
    for scope in scopes:
        pa_rows = _select(rows, scope=scope, method="pa")
        if len(_gs(pa_rows, g_names)) < 2:
            continue
        series = [("magnitude", _curve(_select(rows, scope=scope, method="magnitude"),
                                       "vstoi_pruned"))]
        series += [(f"g={g}", _curve(_select(pa_rows, g=g), "vstoi_pruned")) for g in _gs(pa_rows, g_names)]
        panels.append((f"{scope}: perturbation functions g (Eq. 6)", series, None))
    figure("g_functions.png", panels)
    # Fig. 6: after PA training, before pruning, with the unpruned model as reference.
    before = [v for v in (_number(r.get("vstoi_before")) for r in rows) if math.isfinite(v)]

    def reference(ax: Any) -> None:
        if before:  # the same starting model for every run: its VSTOI (mean in case of noise)
            ax.axhline(float(np.mean(before)), color="k", linestyle="--", linewidth=1,
                       label="unpruned model")

    panels = []
    for scope in scopes:
        pa_rows = _select(rows, scope=scope, method="pa")
        series = [(pa_label(g), _curve(_select(pa_rows, g=g), "vstoi_pa")) for g in _gs(pa_rows, g_names)]
        panels.append((f"{scope}: after PA training, before pruning", series, reference))
    figure("before_pruning.png", panels)
    # Fig. 7: after fine-tuning, baseline vs PA, per scope.
    panels = []
    for scope in scopes:
        pa_rows = _select(rows, scope=scope, method="pa")
        series = [("magnitude", _curve(_select(rows, scope=scope, method="magnitude"),
                                       "vstoi_finetuned"))]
        series += [(pa_label(g), _curve(_select(pa_rows, g=g), "vstoi_finetuned"))
                   for g in _gs(pa_rows, g_names)]
        panels.append((f"{scope}: after fine-tuning", series, None))
    figure("finetuned.png", panels)
    return written
