"""Commands of pruning: prune (the paper's protocol), schedule, sensitivity, report."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from ._common import (METHODS, PERTURBATIONS, Progress, SCOPES, _check_data_options, _dataset,
                      _dataset_line, _dataset_option, _emit, _finetune_average_option, _gains,
                      _precision_option,
                      _gains_options, _json_option, _load_model_arg,
                      _output_option, _quiet, _tiny_option, cli)


_SCOPE_CHOICE = click.Choice(list(SCOPES))


def _spsa_run_options(f):
    """--seed, --batch-size, --checkpoint-every and the gains of a pruning or schedule run."""
    f = _gains_options(f)
    f = click.option("--checkpoint-every", type=click.IntRange(min=1), default=25, show_default=True,
                     help="Write a checkpoint every this many SPSA iterations (and on Ctrl-C).")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Items per SPSA evaluation (default: the whole train split, as the "
                          "paper).")(f)
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Seed of the SPSA perturbations.")(f)


def _schedule_epoch_options(prefix: str = ""):
    """--epoch-iters and --epochs of a schedule run (`pa-ci schedule`, `pa-ci prune --schedule`)."""
    def text(s: str) -> str:
        return prefix + s if prefix else s[0].upper() + s[1:]

    def decorate(f):
        f = click.option("--epochs", type=click.IntRange(min=1), default=None,
                         help=text("epochs to run (default: the file's pa_ci.epochs, else the "
                                   "last pruning epoch + 1)."))(f)
        return click.option("--epoch-iters", type=click.IntRange(min=0), default=None,
                            help=text("SPSA iterations per schedule epoch (default: the "
                                      "file's pa_ci.iterations_per_epoch, else 100)."))(f)
    return decorate


@cli.command("prune")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--rate", type=float, default=None,
              help="Fraction of the scope's matrix weights set to zero (0..1), e.g. 0.55.")
@click.option("--scope", type=_SCOPE_CHOICE, default="whole", show_default=True,
              help="Eligible weights: encoder + decoder, decoder only, or encoder only.")
@click.option("--method", type=click.Choice(list(METHODS)), default="pa", show_default=True,
              help="pa: PA training (Eq. 5/6), prune, fine-tune (the paper's proposal); "
                   "magnitude: prune, fine-tune (its baseline).")
@click.option("--g", "g", type=click.Choice(list(PERTURBATIONS)), default="linear",
              show_default=True, help="Perturbation function of Eq. 6.")
@click.option("--lambda", "lam", type=float, default=1.0, show_default=True, help="lambda of Eq. 5.")
@click.option("--pa-iters", type=click.IntRange(min=0), default=None,
              help="SPSA iterations on the pruning-aware loss before pruning (method pa; "
                   "default 1000, the paper's).")
@click.option("--finetune-iters", type=click.IntRange(min=0), default=None,
              help="Fine-tuning iterations after pruning, exactly this many for either method "
                   "(default: the paper's, 7000 for pa and 8000 for magnitude, the same total).")
@_spsa_run_options
@_finetune_average_option
@_precision_option
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Run folder: model.npz (pruned + fine-tuned), pruned.npz, result.json, stages.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT (finished stages are kept).")
@click.option("--schedule", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run a Distiller-style YAML compression schedule instead of --rate "
                   "(per-tensor pruners, fine-tuning between pruning events).")
@_schedule_epoch_options("With --schedule: ")
@_dataset_option
@_tiny_option
@_json_option
@click.pass_context
def prune_command(ctx: click.Context, model: Path | None, rate: float | None, scope: str,
                  method: str, g: str, lam: float, pa_iters: int | None,
                  finetune_iters: int | None, seed: int,
                  batch_size: int | None, checkpoint_every: int, gain_a: float, gain_A: float,
                  gain_c: float, alpha: float, gamma: float, finetune_average: float | None,
                  precision: str, output: Path, resume: bool, schedule: Path | None, epoch_iters: int | None, epochs: int | None,
                  dataset_dir: Path | None, tiny: bool, as_json: bool) -> None:
    """Prune MODEL (default: the shipped model) by the paper's protocol (§II-D) or a schedule.

    pa: PA-ITERS SPSA iterations on the pruning-aware loss (Eq. 5/6) at the target rate, global
    magnitude pruning, FINETUNE-ITERS iterations with the mask fixed. magnitude: prune, then
    FINETUNE-ITERS fine-tuning iterations (default 8000, the total of the pa defaults). Prints
    the test-split VSTOI before, after
    PA training, right after pruning and after fine-tuning, and the non-zero weights per part.

    --schedule FILE.yaml: Distiller's compression-schedule format (SensitivityPruner,
    SparsityLevelParameterPruner, AutomatedGradualPruner, MagnitudeParameterPruner; policies with
    starting_epoch / ending_epoch (exclusive) / frequency, or epochs: [...]), where an epoch is
    --epoch-iters SPSA iterations. See `pydoc pa_ci.prune.schedule`.
    """
    from ..codec.export import MEMORY_BUDGET_BYTES
    from ..experiment.protocol import PAPER_BASELINE_ITERS, protocol_spec, run_protocol
    _check_data_options(tiny, dataset_dir)
    gains = _gains(gain_a, gain_A, gain_c, alpha, gamma)
    if schedule is not None:
        protocol_only = [f"--{n.replace('_', '-')}" for n in ("rate", "scope", "method", "g", "lam",
                                                              "pa_iters", "finetune_iters",
                                                              "finetune_average", "precision")
                         if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]
        if protocol_only:
            raise click.UsageError(f"{', '.join(protocol_only).replace('--lam', '--lambda')} "
                                   "cannot be combined with --schedule (the schedule says what to prune)")
        _prune_schedule(model, schedule, output, epoch_iters, epochs, seed, batch_size,
                        checkpoint_every, gains, resume, tiny, dataset_dir, as_json)
        return
    for n in ("epoch_iters", "epochs"):
        if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"--{n.replace('_', '-')} needs --schedule")
    if rate is None:
        raise click.UsageError("--rate is required (the fraction of eligible weights to prune), "
                               "or --schedule FILE.yaml")
    if method == "magnitude" and pa_iters:
        click.echo(f"warning: --pa-iters {pa_iters} is ignored: the magnitude baseline has no PA "
                   "training; it fine-tunes for --finetune-iters "
                   f"({PAPER_BASELINE_ITERS if finetune_iters is None else finetune_iters})",
                   err=True)
        pa_iters = None
    spec = protocol_spec(rate, scope, method, g=g, seed=seed, pa_iters=pa_iters,
                         finetune_iters=finetune_iters, lam=lam)
    source = _load_model_arg(model)
    dataset = _dataset(tiny, dataset_dir)
    labels = {"pa": "PA training", "finetune": "fine-tune"}
    r = run_protocol(source, spec, output, train_items=dataset.train, eval_items=dataset.test,
                     gains=gains, batch_size=batch_size, checkpoint_every=checkpoint_every,
                     resume=resume, progress=lambda stage: Progress(labels[stage]),
                     dataset=dataset.record(), export_part=scope,
                     finetune_average=finetune_average, precision=precision)
    text = (f"{method} pruning of {scope} weights at rate {rate:g} (test split, {r['eval_items']} items)\n"
            f"  VSTOI before {r['vstoi_before']:.4f}"
            + (f"   after PA training {r['vstoi_pa']:.4f}" if method == "pa" else "")
            + f"   pruned {r['vstoi_pruned']:.4f}   fine-tuned {r['vstoi_finetuned']:.4f} "
            f"({r['finetune_total']} iterations)\n"
            + (f"  mean of the last {r['finetune_average']:g} of the fine-tuning iterates: "
               f"{r['vstoi_finetuned_mean']:.4f}\n" if "vstoi_finetuned_mean" in r else "")
            + f"  non-zero weights: {r['nonzero_weights']} of {r['eligible_weights']} eligible; "
            f"encoder {r['nonzero_encoder']}/{r['weights_encoder']}, "
            f"decoder {r['nonzero_decoder']}/{r['weights_decoder']}\n"
            f"  {scope} part as a sparse float32 export: {r['size_bytes']} bytes (dense float32 "
            f"{r['dense_float32_bytes']} bytes; budget {MEMORY_BUDGET_BYTES // 1024} kB)\n"
            f"  {_dataset_line(r.get('dataset'))}; wrote {r['model']} and {r['export']}")
    _emit(as_json, r, text)


def _prune_schedule(model: Path | None, schedule_file: Path, output: Path, epoch_iters: int | None,
                    epochs: int | None, seed: int, batch_size: int | None, checkpoint_every: int,
                    gains: Any, resume: bool, tiny: bool, dataset_dir: Path | None,
                    as_json: bool) -> None:
    """`pa-ci prune --schedule`: check the schedule against the model, then run it."""
    from ..prune.schedule import load_schedule
    from ..prune.schedule_run import run_schedule
    source = _load_model_arg(model)
    schedule = load_schedule(schedule_file, source.layout)   # refused before any data is built
    for w in schedule.warnings:
        click.echo(f"warning: {w}", err=True)
    dataset = _dataset(tiny, dataset_dir)

    def show(row: dict) -> None:
        if not as_json and not _quiet():
            pruned = "" if row["vstoi_pruned"] is None else f"pruned {row['vstoi_pruned']:.4f}  "
            clear = "\r\x1b[K" if sys.stderr.isatty() else ""      # over the progress line
            click.echo(f"{clear}epoch {row['epoch']:3d}: {pruned}VSTOI {row['vstoi']:.4f}  "
                       f"sparsity {row['sparsity']:.1%}", err=True)

    r = run_schedule(source, schedule, output, train_items=dataset.train, eval_items=dataset.test,
                     iterations_per_epoch=epoch_iters, epochs=epochs, gains=gains,
                     batch_size=batch_size, seed=seed, checkpoint_every=checkpoint_every,
                     resume=resume, progress=_ScheduleProgress(enabled=not as_json), on_epoch=show,
                     dataset=dataset.record(), export_part="whole")
    lines = [f"schedule {schedule_file}: {r['epochs']} epochs x {r['iterations_per_epoch']} SPSA "
             f"iterations, pruning at epoch{'s' if len(r['pruning_epochs']) > 1 else ''} "
             f"{_epoch_list(r['pruning_epochs'])} "
             f"(test split, {r['eval_items']} items)",
             f"  {_dataset_line(r.get('dataset'))}",
             f"  VSTOI before {r['vstoi_before']:.4f}   after the schedule {r['vstoi_final']:.4f}",
             f"  non-zero weights: {r['nonzero_weights']} of {r['eligible_weights']} "
             f"({r['sparsity']:.1%} sparse); encoder {r['nonzero_encoder']}/{r['weights_encoder']}, "
             f"decoder {r['nonzero_decoder']}/{r['weights_decoder']}"]
    lines += [f"    {name:<14} {t['nonzero']:>5}/{t['size']:<5} {1 - t['nonzero'] / t['size']:6.1%} sparse"
              for name, t in r["tensors"].items() if t["nonzero"] < t["size"]]
    lines.append(f"  whole model as a sparse float32 export: {r['size_bytes']} bytes (dense float32 "
                 f"{r['dense_float32_bytes']} bytes); wrote {r['model']}, {r['export']}, "
                 f"{output / 'epochs.csv'}, {output / 'events.csv'}")
    _emit(as_json, r, "\n".join(lines))


@cli.command("schedule")
@click.argument("schedule_file", metavar="FILE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("model", type=click.Path(path_type=Path), required=False)
@_schedule_epoch_options()
@_spsa_run_options
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Run folder: model.npz, whole.pacx, epochs.csv, events.csv, result.json, epochs/.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT (finished epochs are kept).")
@_dataset_option
@_tiny_option
@_json_option
def schedule_command(schedule_file: Path, model: Path | None, epoch_iters: int | None,
                     epochs: int | None, seed: int, batch_size: int | None, checkpoint_every: int,
                     gain_a: float, gain_A: float, gain_c: float, alpha: float, gamma: float,
                     output: Path, resume: bool, dataset_dir: Path | None, tiny: bool,
                     as_json: bool) -> None:
    """Run the compression schedule FILE.yaml on MODEL (default: the shipped model).

    Distiller's compression-schedule format (SensitivityPruner, SparsityLevelParameterPruner,
    AutomatedGradualPruner, MagnitudeParameterPruner; policies with starting_epoch /
    ending_epoch (exclusive) / frequency, or epochs: [...]), where an epoch is --epoch-iters SPSA
    iterations of fine-tuning with the pruned weights fixed. `pa-ci sensitivity` proposes one.
    Same as `pa-ci prune --schedule FILE.yaml`. See `pydoc pa_ci.prune.schedule`.
    """
    _check_data_options(tiny, dataset_dir)
    _prune_schedule(model, schedule_file, output, epoch_iters, epochs, seed, batch_size,
                    checkpoint_every, _gains(gain_a, gain_A, gain_c, alpha, gamma), resume, tiny,
                    dataset_dir, as_json)


class _ScheduleProgress:
    """One progress line over all epochs of a schedule run (ETA from this process's own pace)."""

    def __init__(self, enabled: bool) -> None:
        self.bar = Progress("schedule", enabled)
        self.base: int | None = None

    def __call__(self, epoch: int, n_epochs: int, ipe: int):
        def update(done: int, total: int, info: str = "") -> None:
            overall = epoch * ipe + (ipe - total) + done     # total = what remained of the epoch
            if self.base is None:                            # work done before this process
                self.base = overall - done
            self.bar(overall - self.base, n_epochs * ipe - self.base,
                     f"epoch {epoch + 1}/{n_epochs} {info}")
        return update


def _epoch_list(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs)) if len(epochs) <= 8 else \
        f"{', '.join(map(str, epochs[:3]))}, ..., {epochs[-1]} ({len(epochs)} events)"


@cli.command("sensitivity")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--range", "sense_range", type=(float, float, float), default=(0.0, 0.95, 0.05),
              show_default=True, metavar="START STOP STEP",
              help="Sparsity levels, STOP included when it lies on the grid.")
@_output_option("Folder for sensitivity.csv, sensitivity.png, proposed_schedule.yaml, config.json.",
                alias=True, type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--tensors", default=None,
              help="Comma-separated tensor names (default: every matrix weight; `pa-ci report` "
                   "lists them).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Items the metric is measured on (train: the analysis chooses a schedule, so it "
                   "should not look at the test speakers).")
@click.option("--extended", is_flag=True, help="Measure ESTOI of the vocoded pattern instead of STOI.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.01, show_default=True,
              help="Proposed level per tensor: the largest tested sparsity whose metric stays "
                   "within this of the unpruned model.")
@click.option("--target-sparsity", type=click.FloatRange(0, 1), default=None,
              help="Instead of --tolerance: the smallest tolerance whose proposed levels prune at "
                   "least this fraction of the analysed weights.")
@_dataset_option
@_tiny_option
@_json_option
@click.pass_context
def sensitivity_command(ctx: click.Context, model: Path | None,
                        sense_range: tuple[float, float, float], output: Path,
                        tensors: str | None, split: str, extended: bool, tolerance: float,
                        target_sparsity: float | None, dataset_dir: Path | None, tiny: bool,
                        as_json: bool) -> None:
    """Per-tensor sensitivity analysis of MODEL (default: the shipped model).

    Each weight tensor alone is pruned to each level (smallest |w| first) without retraining and
    the mean VSTOI of the split is measured. Writes OUTPUT/sensitivity.csv (tensor,sparsity,
    metric), OUTPUT/sensitivity.png (one line per tensor) and OUTPUT/proposed_schedule.yaml:
    per-tensor SensitivityPruner multipliers s whose threshold s x std prunes the proposed level
    on this model (Distiller's format, for `pa-ci prune --schedule`).
    """
    from ..prune.sensitivity import sparsity_levels
    from ..prune.sensitivity_run import run_analysis
    _check_data_options(tiny, dataset_dir)
    if target_sparsity is not None and \
            ctx.get_parameter_source("tolerance") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --tolerance or --target-sparsity, not both")
    if not (math.isfinite(tolerance) and tolerance >= 0):  # checked before any work is done
        raise click.BadParameter(f"{tolerance!r}; expected a finite number >= 0",
                                 param_hint="--tolerance")
    if target_sparsity is not None and not (math.isfinite(target_sparsity) and 0 < target_sparsity < 1):
        raise click.BadParameter(f"{target_sparsity!r}; expected a number in (0, 1)",
                                 param_hint="--target-sparsity")
    source = _load_model_arg(model)
    sparsity_levels(*sense_range)   # refuse a bad range, and a bad name, before building the dataset
    names = None if tensors is None else [t.strip() for t in tensors.split(",") if t.strip()]
    for name in names or ():
        source.layout[name]
    dataset = _dataset(tiny, dataset_dir)
    items = dataset.split(split)
    result = run_analysis(source, items, sense_range=sense_range, tensors=names, split=split,
                          extended=extended, tolerance=tolerance, target_sparsity=target_sparsity,
                          dataset=dataset.record(), tiny=tiny,
                          progress=Progress("sensitivity", enabled=not as_json))
    paths = result.write(output)
    if paths["warning"]:            # matplotlib missing: the CSV is the result, say so once
        click.echo(f"warning: {paths['warning']}", err=True)
    payload = result.to_dict(paths)
    rows, levels, proposed, s_values = (result.rows, result.config["levels"], result.proposed,
                                        result.sensitivities)
    metric_name, reference, tolerance = result.metric_name, result.reference, result.tolerance
    overall, csv_path, png_path, yaml_path = (result.proposed_sparsity, paths["csv"], paths["png"],
                                              paths["proposed_schedule"])
    by_tensor: dict[str, list] = {}
    for r in rows:
        by_tensor.setdefault(r.tensor, []).append(r)
    shown = [lv for i, lv in enumerate(levels) if len(levels) <= 7 or i % max(1, len(levels) // 6) == 0]
    lines = [f"{metric_name} with one tensor pruned ({split} split, {len(items)} items of "
             f"dataset {dataset.key}; unpruned {reference:.4f})",
             f"  {'tensor':<14}" + "".join(f"{lv:>8.0%}" for lv in shown) + "  proposed   s"]
    for t, rs in by_tensor.items():
        at = {r.sparsity: r.metric for r in rs}
        lines.append(f"  {t:<14}" + "".join(f"{at[lv]:>8.4f}" for lv in shown)
                     + f"  {proposed[t]:>8.0%} {s_values[t]:5.2f}")
    lines.append(f"  proposed levels (tolerance {tolerance:.4f}) prune {overall:.1%} of these "
                 "weights")
    lines.append(f"  wrote {csv_path}" + (f", {png_path}" if png_path else "") + f", {yaml_path}")
    _emit(as_json, payload, "\n".join(lines))


@cli.command("report")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@_json_option
def report_command(model: Path | None, as_json: bool) -> None:
    """Per-tensor sparsity table of MODEL (default: the shipped model): shape, nnz, sparsity,
    std and mean |w|, with totals per part."""
    from ..prune.magnitude import part_totals, sparsity_table
    m = _load_model_arg(model)
    rows = sparsity_table(m.theta, m.layout)
    parts = part_totals(rows)
    pruned_mask = None if m.mask is None else int((~m.mask).sum())
    payload = {"model": str(m.path), "model_hash": m.hash, "tensors": rows, "parts": parts,
               "masked_entries": pruned_mask,
               "meta": m.meta.get("protocol") or m.meta.get("schedule")}
    lines = [f"{m.path} ({m.hash})",
             f"  {'tensor':<14} {'kind':<8} {'shape':>9} {'nnz':>6} {'sparsity':>8} {'std':>8} {'mean|w|':>8}"]
    for r in rows:
        shape = "x".join(str(d) for d in r["shape"])
        lines.append(f"  {r['name']:<14} {r['kind']:<8} {shape:>9} {r['nnz']:>6} "
                     f"{r['sparsity']:>8.1%} {r['std']:>8.4f} {r['mean_abs']:>8.4f}")
    for part, d in parts.items():
        lines.append(f"  {part} weights: {d['nonzero_weights']} of {d['weights']} non-zero "
                     f"({d['sparsity']:.1%} sparse)")
    if pruned_mask is not None:
        lines.append(f"  mask: {pruned_mask} entries fixed at zero (pruned)")
    _emit(as_json, payload, "\n".join(lines))
