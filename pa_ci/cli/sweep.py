"""The sweep command: the paper's experiment over rates, scopes, methods, g and seeds."""
from __future__ import annotations

from pathlib import Path

import click

from ._common import (METHODS, PERTURBATIONS, PaCiError, Progress, SCOPES, _check_data_options,
                      _dataset, _dataset_line, _dataset_option, _emit, _finetune_average_option, _precision_option,
                      _gains, _gains_options, _json_option, _output_option,
                      _tiny_option, cli)


def _csv_list(kind: str, allowed: tuple[str, ...] | None = None, cast=str):
    def parse(ctx, param, value: str) -> tuple:
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items:
            raise click.BadParameter(f"expected a comma-separated list of {kind}")
        out = []
        for v in items:
            if allowed is not None and v not in allowed:
                raise click.BadParameter(f"{v!r} is not one of {', '.join(allowed)}")
            try:
                out.append(cast(v))
            except ValueError:
                raise click.BadParameter(f"{v!r} is not an integer") from None
        return tuple(dict.fromkeys(out))
    return parse


@cli.command("sweep", short_help="The paper's experiment: prune at many rates, scopes, methods, "
                                  "seeds; one table, the figures.")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--rates", default="0.05..0.95:0.05", show_default=True,
              help="Pruning rates: 'A..B:STEP' or 'r1,r2,...' (default: the paper's 19 rates).")
@click.option("--scopes", default="whole,decoder", show_default=True,
              callback=_csv_list("scopes", tuple(SCOPES)),
              help="Comma-separated scopes of eligible weights: whole, decoder, encoder.")
@click.option("--methods", default="magnitude,pa", show_default=True,
              callback=_csv_list("methods", tuple(sorted(METHODS))),
              help="Comma-separated methods: pa (PA training, prune, fine-tune), magnitude "
                   "(prune, fine-tune).")
@click.option("--g", "gs", default="linear", show_default=True,
              callback=_csv_list("perturbation functions", tuple(PERTURBATIONS)),
              help="Perturbation functions of Eq. 6 for the pa runs.")
@click.option("--seeds", default="0", show_default=True, callback=_csv_list("seeds", None, int),
              help="Comma-separated seeds of the SPSA perturbations (one run per seed).")
@click.option("--pa-iters", type=click.IntRange(min=1), default=1000, show_default=True,
              help="PA training iterations of the pa runs.")
@click.option("--finetune-iters", type=click.IntRange(min=0), default=7000, show_default=True,
              help="Fine-tuning iterations of the pa runs, after PA training.")
@click.option("--baseline-iters", type=click.IntRange(min=0), default=None,
              help="Fine-tuning iterations of the magnitude runs (default: --pa-iters + "
                   "--finetune-iters, the same total as the pa runs; the paper: 8000).")
@click.option("--lambda", "lam", type=float, default=1.0, show_default=True, help="lambda of Eq. 5.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Items per SPSA evaluation (default: the whole train split, as the paper).")
@_gains_options
@_finetune_average_option
@_precision_option
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs in parallel on a local process pool.")
@click.option("--scheduler", default=None,
              help="Run on this Dask distributed scheduler (tcp://HOST:PORT; the 'dist' extra).")
@_output_option("Sweep folder: results.csv, sweep.json, figures, runs/ (run folders).", alias=True,
                type=click.Path(file_okay=False, path_type=Path), required=True)
@_dataset_option
@_tiny_option
@_json_option
def sweep_command(model: Path | None, rates: str, scopes: tuple, methods: tuple, gs: tuple,
                  seeds: tuple, pa_iters: int, finetune_iters: int, baseline_iters: int | None,
                  lam: float, batch_size: int | None, gain_a: float, gain_A: float, gain_c: float,
                  alpha: float, gamma: float, finetune_average: float | None,
                  precision: str, workers: int,
                  scheduler: str | None, output: Path,
                  dataset_dir: Path | None, tiny: bool, as_json: bool) -> None:
    """The paper's experiment (§II-D, Figs. 1-7): prune MODEL (default: the shipped model) at
    every rate x scope x method x g x seed by the protocol of `pa-ci prune`, one row per run in
    OUTPUT/results.csv, and plot VSTOI against the pruning rate. The pa runs train PA-ITERS +
    FINETUNE-ITERS iterations, the magnitude runs fine-tune BASELINE-ITERS (by default the same
    total). Running it again with the same OUTPUT resumes: finished runs are skipped (local runs
    also resume mid-run from OUTPUT/runs/); it must use the same dataset and iterations. With
    --dataset and --scheduler, the Dask workers read the dataset folder at the same path (a
    shared disk); without --dataset they build the default dataset themselves (and fail if
    theirs differs from this machine's)."""
    import dataclasses

    from ..codec.coder import SHIPPED_MODEL
    from ..experiment.protocol import JobContext
    from ..experiment.sweep import parse_rates, plan_runs, plot_sweep, run_sweep, summary_table
    out = output
    _check_data_options(tiny, dataset_dir)
    specs = plan_runs(parse_rates(rates), scopes, methods, gs, seeds, pa_iters, finetune_iters,
                      baseline_iters=baseline_iters, lam=lam)
    gains = _gains(gain_a, gain_A, gain_c, alpha, gamma)
    job = JobContext.from_model_file(SHIPPED_MODEL if model is None else model, tiny=tiny,
                                     gains=gains.to_dict(), batch_size=batch_size,
                                     finetune_average=finetune_average, precision=precision,
                                     work_dir=None if scheduler else str((out / "runs").resolve()))
    if dataset_dir is not None or scheduler is None:
        # the folder given, or the default built (or loaded) once here, not in every worker
        ds = _dataset(tiny, dataset_dir)
        record = ds.record()
        data = {"dataset_path": record["path"]}
    else:                                    # Dask workers build the default in their caches
        from ..data.dataset import default_config, planned_record
        record = planned_record(default_config(tiny=tiny))
        data = {}
    counts = {"n_train": record["n_train"], "n_test": record["n_test"]}
    job = dataclasses.replace(job, dataset_key=record["key"], dataset_counts=counts, **data)
    shown = Progress("sweep")

    def progress(done: int, total: int, info: dict) -> None:
        if "error" in info:
            text = f"{info['key']} failed: {info['error']}"
        else:
            text = (f"{info['key']} VSTOI pruned {info['vstoi_pruned']:.4f} "
                    f"fine-tuned {info['vstoi_finetuned']:.4f}")
        shown(done, total, text)

    result = run_sweep(specs, job, out, workers=workers, scheduler=scheduler, progress=progress)
    plots = plot_sweep(result.rows, out)
    table = summary_table(result.rows)
    payload = {"out": str(out), "results": str(result.csv_path), "runs": len(specs),
               "done": len(result.done), "skipped": len(result.skipped), "failed": result.failed,
               "plots": [str(p) for p in plots], "summary": table, "dataset": record}
    before = sorted({f"{r['vstoi_before']:.4f}" for r in result.rows if "vstoi_before" in r})
    lines = [f"{len(result.rows)} runs in {result.csv_path} ({len(result.done)} new, "
             f"{len(result.skipped)} already done); {_dataset_line(record)}; test VSTOI of the "
             f"unpruned model {', '.join(before)}",
             f"  {'scope':<8} {'rate':>5} {'method':<10} {'g':<9} {'n':>2}  {'pruned':>7}  "
             f"{'fine-tuned':>10}  {'PA - magnitude (pruned, fine-tuned)'}"]
    for e in table:
        gain = ""
        if e.get("pruned_gain") is not None:
            gain = f"{e['pruned_gain']:+.4f}, {e['finetuned_gain']:+.4f}"
        lines.append(f"  {e['scope']:<8} {e['rate']:>5.2f} {e['method']:<10} {e['g']:<9} "
                     f"{e['n']:>2}  {e['vstoi_pruned_mean']:>7.4f}  {e['vstoi_finetuned_mean']:>10.4f}  {gain}")
    if plots:
        lines.append("  figures: " + ", ".join(p.name for p in plots))
    else:
        lines.append("  (no figures: install matplotlib, pip install 'pa-ci[plot]')")
    _emit(as_json, payload, "\n".join(lines))
    if not result.ok:
        key, msg = next(iter(result.failed.items()))
        raise PaCiError(f"{len(result.failed)} of {len(specs)} runs failed (see {out / 'failed.json'}); "
                        f"first: {key}: {msg}")
