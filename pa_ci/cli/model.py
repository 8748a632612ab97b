"""Commands of one model: train, eval, encode, decode, export."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import (FraeConfig, Progress, _FRAE_DEFAULTS, _check_data_options, _dataset,
                      _dataset_line, _dataset_option, _emit, _gains,
                      _gains_options, _json_option, _model_option, _precision_option,
                      _tiny_option, cli)


@cli.command("train")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Run folder: config.json, checkpoint.npz, log.csv, model.npz.")
@click.option("--iters", type=click.IntRange(min=0), default=1000, show_default=True,
              help="SPSA iterations (the paper fine-tunes for 7000-8000).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the initialisation, warm start and SPSA perturbations.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT from its checkpoint.")
@click.option("--init", "init_model", type=click.Path(path_type=Path), default=None,
              help="Start from this model instead of a seeded initialisation + warm start.")
@click.option("--warm-start", "warm_start", type=click.IntRange(min=0), default=400,
              show_default=True, help="Adam steps of the frame-MSE warm start before SPSA (0: none).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Items per SPSA evaluation (default: the whole train set, as the paper).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=25, show_default=True,
              help="Write a checkpoint every this many SPSA iterations (and on Ctrl-C).")
@_gains_options
@click.option("--averaging", type=click.IntRange(min=1), default=1, show_default=True,
              help="SP gradients averaged per iteration (Spall).")
@click.option("--blocking", type=float, default=None,
              help="Reject steps that lower the VSTOI by more than this (Spall's blocking).")
@click.option("--calibrate", "calibrate_step", type=float, default=None,
              help="Set a and A by Spall's calibration for this first step per weight (keeps c).")
@click.option("--average-from", "average_from", type=click.IntRange(min=0), default=None,
              help="Iterate averaging (Polyak): the model is the mean of the iterates after "
                   "this iteration of the run on (0: all); the last iterate's train VSTOI goes "
                   "to the model's meta.")
@_precision_option
@click.option("--enc-hidden", type=click.IntRange(min=1), default=_FRAE_DEFAULTS.enc_hidden, show_default=True,
              help="Units of the encoder GRU.")
@click.option("--dec-hidden", type=click.IntRange(min=1), default=_FRAE_DEFAULTS.dec_hidden, show_default=True,
              help="Units of the decoder GRU.")
@click.option("--latent-dim", type=click.IntRange(min=1), default=_FRAE_DEFAULTS.latent_dim, show_default=True,
              help="Dimension of the latent the vector quantiser codes.")
@click.option("--codebook-size", type=click.IntRange(min=2), default=_FRAE_DEFAULTS.codebook_size,
              show_default=True,
              help="Codewords of the vector quantiser (64: 6 bits per frame).")
@click.option("--output-maxima", type=click.IntRange(min=0), default=_FRAE_DEFAULTS.output_maxima,
              show_default=True,
              help="Decoder keeps this many largest channels per frame (0: all).")
@_dataset_option
@_tiny_option
@_json_option
def train_command(output: Path, iters: int, seed: int, resume: bool, init_model: Path | None,
                  warm_start: int, batch_size: int | None, checkpoint_every: int, gain_a: float,
                  gain_A: float, gain_c: float, alpha: float, gamma: float, averaging: int,
                  blocking: float | None, calibrate_step: float | None, average_from: int | None,
                  precision: str, enc_hidden: int, dec_hidden: int, latent_dim: int,
                  codebook_size: int, output_maxima: int, dataset_dir: Path | None, tiny: bool,
                  as_json: bool) -> None:
    """Train an FRAE by SPSA on mean VSTOI over the train split (paper §II-C, Eq. 7).

    A seeded initialisation and a short frame-MSE warm start come first (or --init MODEL; the
    mask of a pruned MODEL is kept, so its pruned weights stay zero).
    Progress (iteration, VSTOI, ETA) goes to stderr; Ctrl-C checkpoints, --resume continues.
    """
    from ..codec.coder import load_codec
    from ..train.training import TrainOptions, train

    _check_data_options(tiny, dataset_dir)
    config = FraeConfig(enc_hidden=enc_hidden, dec_hidden=dec_hidden, latent_dim=latent_dim,
                        codebook_size=codebook_size, output_maxima=output_maxima)
    init_theta = init_name = mask = None
    if init_model is not None:
        codec = load_codec(init_model)
        if codec.config != config:
            raise click.UsageError(f"{init_model}: its FRAE config differs from the size options")
        init_theta, init_name = codec.theta, f"{Path(init_model).name} {codec.hash}"
        mask = codec.model.mask  # a pruned model stays pruned: its mask is kept fixed
    options = TrainOptions(iters=iters, seed=seed, batch_size=batch_size, averaging=averaging,
                           blocking=blocking, checkpoint_every=checkpoint_every,
                           warm_start_steps=0 if init_model is not None else warm_start,
                           calibrate_step=calibrate_step, average_from=average_from, precision=precision,
                           gains=_gains(gain_a, gain_A, gain_c, alpha, gamma))
    dataset = _dataset(tiny, dataset_dir)
    record = dataset.record()
    info = {**record, "split": "train", "config": dataset.config.to_dict()}
    path = train(output, dataset.train, config=config, options=options, dataset_info=info,
                 init_theta=init_theta, init_name=init_name, resume=resume,
                 progress=Progress("train"), warm_start_progress=Progress("warm start"),
                 mask=mask)
    codec = load_codec(path)
    meta = codec.model.meta
    result = {"model": str(path), "run": str(output), "iterations": meta.get("iterations"),
              "train_vstoi": meta.get("train_vstoi"), "vstoi_initial": meta.get("vstoi_initial"),
              "iterate_mean": meta.get("iterate_mean"),
              "seed": seed, "model_hash": codec.hash, "n_weights": codec.n_weights,
              "dataset": record}
    text = (f"wrote {path} after {result['iterations']} SPSA iterations: train VSTOI "
            f"{result['train_vstoi']:.4f}; {_dataset_line(record)}")
    _emit(as_json, result, text)


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="Items to score (the paper reports the test split).")
@click.option("--export", "export_file", type=click.Path(path_type=Path), default=None,
              help="A sparse export of MODEL (pa-ci export) to score instead: its dequantised "
                   "weights on the side(s) it carries, MODEL's float64 weights elsewhere.")
@_dataset_option
@_tiny_option
@_json_option
def eval_command(model: Path | None, split: str, export_file: Path | None,
                 dataset_dir: Path | None, tiny: bool, as_json: bool) -> None:
    """Mean VSTOI of MODEL's coded patterns (default: the shipped model) next to the uncoded
    reference VSTOI, with the bit rate and the index entropy.

    MODEL may be a whole-model export (pa-ci export --part whole); with --export, the export's
    VSTOI is shown next to the float64 model's (pa_ci.codec.coder.evaluate_export).
    Says which dataset it scored on and, when MODEL records one, the dataset it was trained on."""
    from ..codec.coder import _is_export, load_codec
    from ..train.evaluate import dataset_figures, evaluate, evaluate_export, load_export_for
    _check_data_options(tiny, dataset_dir)
    if _is_export(model) and export_file is None:
        export_file, codec = model, None
    else:
        codec = load_codec(model)
    export = None if export_file is None else load_export_for(export_file, codec)
    if export is not None and codec is None and export.part != "whole":
        codec = load_codec()  # load_export_for matched it to the shipped model
    dataset = _dataset(tiny, dataset_dir)
    if export is None:
        r = evaluate(codec, dataset.split(split), dataset=dataset.record())
    else:
        r = evaluate_export(export, dataset.split(split), codec, name=str(export_file))
        r.update(dataset_figures(dataset.record(), None if codec is None else codec.model.meta))
    r["split"] = split
    what = (f"{r['model']}" if export is None else
            f"{export_file} ({export.part} part, {export.values} values"
            + (f", of {r['model']})" if codec is not None else ")"))
    text = (f"{what} ({r['n_weights']} weights + {r['n_parameters'] - r['n_weights']} codebook "
            f"entries), {split} split, {r['n_items']} items, {r['seconds']:.0f} s\n"
            f"  VSTOI coded {r['vstoi']:.4f}   reference (uncoded ACE) {r['reference_vstoi']:.4f}   "
            f"gap {r['vstoi_gap']:+.4f}\n")
    if "vstoi_loss" in r:
        text += (f"  float64 model {r['vstoi_float64']:.4f}   loss {r['vstoi_loss']:+.4f}   "
                 f"same index on {r['index_agreement']:.1%} of frames"
                 + (f"   (open loop, float64 encoder copy: {r['vstoi_open_loop']:.4f})"
                    if "vstoi_open_loop" in r else "") + "\n")
    text += (f"  bit rate {r['bitrate_bps']:.0f} bit/s nominal, {r['measured_bitrate_bps']:.0f} bit/s "
             f"measured (streams with headers); index entropy {r['index_entropy_bits']:.2f} bit "
             f"({r['entropy_bitrate_bps']:.0f} bit/s), {r['codewords_used']} codewords used\n"
             f"  scored on {_dataset_line(r['dataset'])}; " + _trained_on_text(r))
    _emit(as_json, r, text)


def _trained_on_text(r: dict[str, Any]) -> str:
    trained = r.get("trained_on")
    if trained is None:
        return "the model records no training dataset"
    if r.get("same_dataset"):
        return "the model was trained on the same dataset"
    return f"the model was trained on another dataset, {trained['key']}"


def _coding_options(output_help: str):
    """SOURCE, -o/--output (with ``output_help``), --model and --json of encode and decode."""
    def wrap(f):
        for option in (_json_option, _model_option,
                       click.option("-o", "--output", required=True, help=output_help,
                                    type=click.Path(dir_okay=False, path_type=Path)),
                       click.argument("source", type=click.Path(path_type=Path))):
            f = option(f)
        return f
    return wrap


@cli.command("encode")
@_coding_options("Stream file to write (.frae).")
def encode_command(source: Path, output: Path, model: Path | None, as_json: bool) -> None:
    """Code SOURCE audio: ACE pattern -> FRAE indices, packed at 6 bits per frame."""
    from ..codec.coder import encode_file
    r = encode_file(source, output, model)
    text = (f"wrote {r['output']}: {r['frames']} frames, {r['bytes']} bytes, "
            f"{r['bitrate_bps']:.0f} bit/s nominal, {r['measured_bitrate_bps']:.0f} bit/s measured, "
            f"index entropy {r['index_entropy_bits']:.2f} bit/frame")
    _emit(as_json, r, text)


@cli.command("decode")
@_coding_options("OUT.wav (vocoded audio, 16 kHz) or OUT.npz (decoded pattern).")
def decode_command(source: Path, output: Path, model: Path | None, as_json: bool) -> None:
    """Decode a stream written by `pa-ci encode` into a pattern (.npz) or its vocoded audio (.wav).

    --model may also be a sparse decoder export (`pa-ci export`), as a receiver would hold."""
    from ..codec.coder import decode_file
    r = decode_file(source, output, model)
    text = f"wrote {r['output']}: {r['frames']} frames ({r['seconds']:.2f} s)"
    _emit(as_json, r, text)


# ----------------------------------------------------------------------------- pruning
@cli.command("export")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Export file to write (e.g. decoder.pacx); with --format c, a folder.")
@click.option("--part", type=click.Choice(["decoder", "encoder", "whole"]), default="decoder",
              show_default=True, help="decoder: what a CI receiver needs (codebook + dec.*).")
@click.option("--values", type=click.Choice(["float32", "float16", "int8", "int8-row", "int16-row"]),
              default="float32", show_default=True,
              help="Value type of the stored parameters (int8: one scale per tensor; -row: one "
                   "scale per weight row).")
@click.option("--format", "fmt", type=click.Choice(["pacx", "c"]), default="pacx", show_default=True,
              help="pacx: the sparse file; c: OUTPUT/NAME.h + OUTPUT/NAME.c (C99, pa_ci.codec.firmware).")
@click.option("--name", default="frae", show_default=True, help="C name prefix (--format c).")
@click.option("--check", is_flag=True,
              help="Also score the export on the test split against the float64 model.")
@_dataset_option
@_tiny_option
@_json_option
def export_command(model: Path | None, output: Path, part: str, values: str, fmt: str, name: str,
                   check: bool, dataset_dir: Path | None, tiny: bool, as_json: bool) -> None:
    """Write one part of MODEL (default: the shipped model) as a compact sparse file for
    firmware (format: pa_ci.codec.export): matrix weights as bitmap or index list + non-zero values,
    biases and codebook dense. Prints its size against the 32 kB smallest hearing-aid memory.
    With --format c, the same weights as a self-contained C99 decoder / encoder."""
    from ..codec.coder import load_codec
    from ..codec.export import MEMORY_BUDGET_BYTES, export_bytes, from_bytes, write_export
    _check_data_options(tiny, dataset_dir)
    if dataset_dir is not None and not check:
        raise click.UsageError("--dataset needs --check (only the check scores on data)")
    codec = load_codec(model)
    m = codec.model
    dataset = _dataset(tiny, dataset_dir) if check else None   # a bad folder fails before writing
    if fmt == "c":
        from ..codec.firmware import write_c
        files = write_c(output, m.theta, codec.config, part=part, values=values, name=name,
                        model_hash=m.hash)
        d = {**files.to_dict(), "model": str(m.path), "model_hash": m.hash, "format": "c"}
        text = (f"wrote {files.paths[0]} and {files.paths[1]}: {part} part, {values} values, "
                f"{files.weight_bytes} bytes of weights "
                f"({files.weight_bytes / MEMORY_BUDGET_BYTES:.1%} of the "
                f"{MEMORY_BUDGET_BYTES // 1024} kB budget), {files.macs['macs']} multiply-adds "
                f"and {files.macs['exp']} exp per frame")
        exported = from_bytes(export_bytes(m.theta, codec.config, part=part, values=values,
                                           model_hash=m.hash), str(output))
    else:
        info = write_export(output, m.theta, codec.config, part=part, values=values,
                            model_hash=m.hash)
        d = {**info.to_dict(), "model": str(m.path), "model_hash": m.hash, "format": "pacx",
             "budget_fraction": info.n_bytes / MEMORY_BUDGET_BYTES}
        text = (f"wrote {info.path}: {part} part, {values} values, {info.n_bytes} bytes = "
                f"{d['budget_fraction']:.1%} of the {MEMORY_BUDGET_BYTES // 1024} kB budget "
                f"(dense float32 {info.dense_float32_bytes} bytes)\n"
                f"  {info.nonzero_weights} of {info.n_weights} matrix weights stored, "
                f"{info.n_dense} biases + codebook entries; max |error| {info.max_abs_error:.3g}")
        exported = None
    if check:
        from ..train.evaluate import evaluate_export
        from ..codec.export import read_export
        exported = exported if exported is not None else read_export(output)
        r = evaluate_export(exported, dataset.split("test"), codec, name=str(output))
        d["check"] = {k: r[k] for k in ("vstoi", "vstoi_float64", "vstoi_loss",
                                        "index_agreement", "n_items") if k in r}
        d["check"]["dataset"] = dataset.record()
        if "vstoi_open_loop" in r:
            d["check"]["vstoi_open_loop"] = r["vstoi_open_loop"]
        text += (f"\n  test split ({r['n_items']} items): VSTOI {r['vstoi']:.4f}, float64 model "
                 f"{r['vstoi_float64']:.4f}, loss {r['vstoi_loss']:+.4f}; same index on "
                 f"{r['index_agreement']:.1%} of frames")
    _emit(as_json, d, text)
