"""The ``pa-ci`` command line: thin click commands over the library.

Each command parses its options, calls one library function, and prints either readable text or,
with ``--json``, exactly one JSON object on stdout. Progress goes to stderr. Every failure is one
``error: ...`` line on stderr, with click's exit statuses: 2 for a usage error (an unknown
option, a value out of its range: click's checks and :class:`~pa_ci.errors.ParameterError`), 1
for a runtime error (any other :class:`~pa_ci.errors.PaCiError`: a missing or corrupt file, a run
folder in use, a full disk, ...), 130 when interrupted; warnings are ``warning: ...`` lines.
``--quiet`` (before or after the command name) drops the progress lines, not warnings or errors.
``--json`` output is strict JSON: a value that is not a finite number is ``null``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click

from .codec.config import FraeConfig
from .errors import PaCiError, ParameterError
from .experiment.spec import METHODS
from .prune.magnitude import SCOPES
from .prune.pruning_aware import PERTURBATIONS
from .train.spsa import Gains

# Choices and defaults are the library's (these modules load NumPy only, not the kernels).
_PAPER_GAINS = Gains()
_FRAE_DEFAULTS = FraeConfig()

#: Exit statuses (click's convention): a runtime error, a usage error, an interrupt (128 + SIGINT).
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# ----------------------------------------------------------------------------- output helpers
def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as one JSON object (``--json``) or ``text`` for people."""
    if as_json:
        click.echo(strict_json(payload))
    else:
        click.echo(text)


def strict_json(payload: Any) -> str:
    """``payload`` as strict JSON (RFC 8259): NaN and infinities become ``null`` (JSON has no
    such numbers), arrays and NumPy scalars become lists and numbers, paths strings."""
    return json.dumps(_finite(payload), sort_keys=False, allow_nan=False, default=_json_default)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):   # NumPy arrays, scalars
        return _finite(obj.tolist())
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class Progress:
    """A one-line progress display on stderr: count, rate, ETA and an optional figure."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and not _quiet()
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, info: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / done * (total - done) if done else math.nan
        eta_s = f"ETA {eta:5.0f} s" if math.isfinite(eta) else "ETA    ? s"
        line = f"{self.label}: {done}/{total} ({elapsed:.0f} s, {eta_s}){' ' + info if info else ''}"
        end = "\n" if (done >= total or not self.tty) else ""
        click.echo(("\r" if self.tty else "") + line, err=True, nl=False)
        if end:
            click.echo("", err=True)


_QUIET_KEY = "pa_ci.quiet"


def _quiet() -> bool:
    """Whether --quiet was given (before or after the command name) in the running command."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_QUIET_KEY))


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_QUIET_KEY] = True     # ctx.meta is shared by the group and its commands


_QUIET_HELP = "No progress lines on stderr (warnings and errors are still printed)."


def _quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_quiet, help=_QUIET_HELP)(f)


class _OutputOption(click.Option):
    """``-o/--output`` that also accepts an older spelling (``--out``) without showing it."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = hidden_aliases

    def _shown(self) -> list[str]:
        return [o for o in self.opts if o not in self.hidden_aliases]

    def get_help_record(self, ctx: click.Context):
        opts = self.opts
        try:
            self.opts = self._shown()
            return super().get_help_record(ctx)
        finally:
            self.opts = opts

    def get_error_hint(self, ctx: click.Context) -> str:
        return " / ".join(f"'{o}'" for o in self._shown())


def _output_option(help: str, *, alias: bool = False, **kwargs: Any):  # noqa: A002 - click's name
    """``-o/--output`` (with ``alias``: ``--out`` too, hidden; the commands that had it)."""
    names = ("-o", "--output", "--out") if alias else ("-o", "--output")
    return click.option(*names, "output", cls=_OutputOption,
                        hidden_aliases=("--out",) if alias else (), help=help, **kwargs)


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    text = str(message).splitlines()[0] if str(message) else category.__name__
    click.echo(f"warning: {text}", err=True)


# ----------------------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pa-ci", prog_name="pa-ci",
                      help="Print the version and exit.")
@_quiet_option
def cli() -> None:
    """pa-ci: pruning-aware training of zero-delay codecs for cochlear-implant stimulation patterns.

    The signal chain: ACE (16 kHz, 22 channels, 8 maxima, 900 pps) turns audio into a
    stimulation pattern; a sine vocoder turns a pattern back into audio; VSTOI is STOI between the
    clean speech and the vocoded pattern.
    """


def _ace_params(preset: str):
    from .chain.ace import AceParams
    return AceParams.preset(preset)


_preset_option = click.option("--preset", type=click.Choice(["default", "nmt4", "nmt5"]),
                              default="default", show_default=True,
                              help="ACE parameter preset: default (Nucleus-toolbox defaults: "
                                   "22 channels, 8 maxima, 900 pps, calibration and AGC), nmt4 "
                                   "(the NMT 4 chain: no calibration, no AGC), nmt5 (vector-sum "
                                   "envelopes).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")


@cli.command("vstoi")
@click.argument("clean", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--noisy", type=click.Path(path_type=Path), default=None,
              help="Noisy mixture to code with ACE (default: the clean file itself).")
@click.option("--extended", is_flag=True, help="Use ESTOI (Jensen & Taal 2016) instead of STOI.")
@_preset_option
@_json_option
def vstoi_command(clean: Path, noisy: Path | None, extended: bool, preset: str, as_json: bool) -> None:
    """Print the VSTOI of the ACE pattern of CLEAN (or of --noisy) against CLEAN.

    VSTOI = STOI(clean speech, sine-vocoded ACE pattern), both at 16 kHz. With --noisy, the
    acoustic STOI of the mixture itself is printed too.
    """
    from .chain.files import vstoi_of_files
    result = vstoi_of_files(clean, noisy, _ace_params(preset), extended=extended)
    name = "VESTOI" if extended else "VSTOI"
    text = (f"{name} {result['vstoi']:.4f}  ({result['coded_file']} vs {result['clean_file']}, "
            f"{result['frames']} frames, {result['seconds']:.2f} s, preset {preset})")
    if "stoi_input" in result:
        text += f"\n{result['measure']} of the mixture itself (no CI processing) {result['stoi_input']:.4f}"
    _emit(as_json, result, text)


@cli.command("vocode")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="WAV file to write (16 kHz, 16-bit).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG: input, stimulation pattern, vocoded audio (needs matplotlib).")
@_preset_option
@_json_option
def vocode_command(source: Path, output: Path, plot: Path | None, preset: str, as_json: bool) -> None:
    """Code SOURCE with ACE and write the sine-vocoded pattern to OUTPUT (what a CI user gets)."""
    from .chain.files import vocode_file
    result = vocode_file(source, output, _ace_params(preset), plot=plot)
    text = f"wrote {result['output']} ({result['seconds']:.2f} s at {result['fs']} Hz, {result['frames']} frames)"
    if plot is not None:
        text += f"\nwrote {result['plot']}"
    _emit(as_json, result, text)


@cli.group("dataset")
def dataset_group() -> None:
    """Build and inspect speech-in-noise datasets (clean, mixture, ACE pattern, reference VSTOI)."""


@dataset_group.command("build")
@click.option("--speech", type=click.Path(path_type=Path), default=None,
              help="Folder of speech files (FLAC/WAV/NIST SPHERE, e.g. a TIMIT copy; searched "
                   "recursively, speaker = MANIFEST.tsv, LibriSpeech name or parent folder); "
                   "default: the bundled subset.")
@click.option("--noise", type=click.Path(path_type=Path), default=None,
              help="Folder of noise files; default: the bundled noises (CCITT noise is added).")
@_output_option("Cache folder; the dataset goes to OUTPUT/datasets/KEY (default: "
                "$PA_CI_CACHE or ~/.cache/pa-ci).", alias=True,
                type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the split, noise and SNR draws (default 0).")
@click.option("--n-train", type=click.IntRange(min=1), default=None,
              help="Train items (default 100, the paper's train patterns).")
@click.option("--n-test", type=click.IntRange(min=1), default=None,
              help="Test items (default: every mixture of the test speakers; the paper: 1680).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Cut every utterance to its first this many seconds (default: whole files).")
@click.option("--mixtures-per-utterance", type=click.IntRange(min=1), default=None,
              help="Noisy mixtures made of each utterance (default 4).")
@click.option("--tiny", is_flag=True, help="The tiny split (8 train, 8 test, first 4 s); the "
                                           "options above override its sizes.")
@_json_option
def dataset_build_command(speech: Path | None, noise: Path | None, output: Path | None,
                          seed: int | None, n_train: int | None, n_test: int | None,
                          max_seconds: float | None, mixtures_per_utterance: int | None,
                          tiny: bool, as_json: bool) -> None:
    """Build (or load from the cache) a dataset and print where it is and its reference VSTOI
    per split. Pass the printed folder to --dataset of train, eval, prune, sensitivity, sweep."""
    import dataclasses

    from .data.dataset import build_dataset, default_config
    config = default_config(tiny=tiny)
    changes = {name: value for name, value in (
        ("speech_dir", speech), ("noise_dir", noise), ("seed", seed), ("n_train", n_train),
        ("n_test", n_test), ("max_seconds", max_seconds),
        ("mixtures_per_utterance", mixtures_per_utterance)) if value is not None}
    if changes:
        config = dataclasses.replace(config, **changes)
    dataset = build_dataset(config, cache_dir=output, progress=Progress("dataset"))
    summary = dataset.summary()
    summary["path"] = str(dataset.path.resolve())
    _emit(as_json, summary, _format_dataset_summary(summary)
          + f"\n  use it with: --dataset {summary['path']}")


def _format_dataset_summary(summary: dict[str, Any]) -> str:
    lines = [f"dataset {summary.get('key', '')} at {summary['path']}"]
    for split in ("train", "test"):
        s = summary.get(split)
        if not s:
            continue
        lines.append(
            f"  {split:5s}: {s['items']:4d} items, {s['speakers']:2d} speakers, {s['seconds']:7.1f} s; "
            f"reference VSTOI mean {s['reference_vstoi_mean']:.4f} "
            f"(min {s['reference_vstoi_min']:.4f}, max {s['reference_vstoi_max']:.4f})")
    return "\n".join(lines)


def _check_data_options(tiny: bool, dataset_dir: Path | None) -> None:
    """--dataset and --tiny name the data two ways: refused before anything is done."""
    if tiny and dataset_dir is not None:
        raise click.UsageError("--dataset and --tiny cannot be combined (the dataset folder "
                               "fixes the split; build a small one with `pa-ci dataset build "
                               "--n-train N --n-test N`)")


def _dataset(tiny: bool, dataset_dir: Path | None = None):
    """The dataset a command trains or evaluates on: the folder --dataset names (loaded, never
    rebuilt; pa_ci.data.find_dataset) or the default on the bundled data (built once, cached)."""
    _check_data_options(tiny, dataset_dir)
    if dataset_dir is not None:
        from .data.dataset import open_dataset
        return open_dataset(dataset_dir)
    from .data.dataset import build_dataset, default_config
    return build_dataset(default_config(tiny=tiny), progress=Progress("dataset"))


def _dataset_line(record: dict[str, Any] | None) -> str:
    if not record:      # a run recorded before runs named their dataset
        return "dataset not recorded"
    return f"dataset {record['key']} ({record['n_train']} train, {record['n_test']} test items)"


_tiny_option = click.option("--tiny", is_flag=True,
                            help="Use the tiny dataset split (8 train, 8 test items, 4 s each).")
_dataset_option = click.option(
    "--dataset", "dataset_dir", type=click.Path(path_type=Path), default=None,
    help="Dataset folder that `pa-ci dataset build` wrote (or its -o folder when it holds one "
         "dataset); default: the bundled data.")
_model_option = click.option("--model", type=click.Path(path_type=Path), default=None,
                             help="Model file or run folder (default: the shipped model).")


def _gains_options(f):
    """SPSA gain options shared by train-like commands (defaults: the paper's, §II-C, Eq. 7:
    a_k = a/(A+k+1)^gamma, c_k = c/(k+1)^beta). The options use Spall's names, so the paper's
    gamma is --alpha and its beta is --gamma."""
    for opt in reversed([
        click.option("--a", "gain_a", type=float, default=_PAPER_GAINS.a, show_default=True,
                     help="SPSA step gain a of a_k = a/(A+k+1)^alpha (the paper's a, Eq. 7)."),
        click.option("--A", "gain_A", type=float, default=_PAPER_GAINS.A, show_default=True,
                     help="SPSA stability constant A of a_k (the paper's A)."),
        click.option("--c", "gain_c", type=float, default=_PAPER_GAINS.c, show_default=True,
                     help="SPSA perturbation size c of c_k = c/(k+1)^gamma (the paper's c)."),
        click.option("--alpha", type=float, default=_PAPER_GAINS.alpha, show_default=True,
                     help="Decay exponent of the step gain a_k (Spall's alpha; the paper's "
                          "gamma)."),
        click.option("--gamma", type=float, default=_PAPER_GAINS.gamma, show_default=True,
                     help="Decay exponent of the perturbation c_k (Spall's gamma; the paper's "
                          "beta).")]):
        f = opt(f)
    return f


def _gains(gain_a: float, gain_A: float, gain_c: float, alpha: float, gamma: float):
    return Gains(a=gain_a, A=gain_A, c=gain_c, alpha=alpha, gamma=gamma)


def _load_model_arg(model: Path | None):
    """The model file MODEL names (a file or run folder; None: the shipped model)."""
    from .codec.coder import load_codec
    return load_codec(model).model


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
                  blocking: float | None, calibrate_step: float | None, enc_hidden: int, dec_hidden: int, latent_dim: int,
                  codebook_size: int, output_maxima: int, dataset_dir: Path | None, tiny: bool,
                  as_json: bool) -> None:
    """Train an FRAE by SPSA on mean VSTOI over the train split (paper §II-C, Eq. 7).

    A seeded initialisation and a short frame-MSE warm start come first (or --init MODEL; the
    mask of a pruned MODEL is kept, so its pruned weights stay zero).
    Progress (iteration, VSTOI, ETA) goes to stderr; Ctrl-C checkpoints, --resume continues.
    """
    from .codec.coder import load_codec
    from .train.training import TrainOptions, train

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
                           calibrate_step=calibrate_step,
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
    from .codec.coder import _is_export, load_codec
    from .train.evaluate import dataset_figures, evaluate, evaluate_export, load_export_for
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


@cli.command("encode")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stream file to write (.frae).")
@_model_option
@_json_option
def encode_command(source: Path, output: Path, model: Path | None, as_json: bool) -> None:
    """Code SOURCE audio: ACE pattern -> FRAE indices, packed at 6 bits per frame."""
    from .codec.coder import encode_file
    r = encode_file(source, output, model)
    text = (f"wrote {r['output']}: {r['frames']} frames, {r['bytes']} bytes, "
            f"{r['bitrate_bps']:.0f} bit/s nominal, {r['measured_bitrate_bps']:.0f} bit/s measured, "
            f"index entropy {r['index_entropy_bits']:.2f} bit/frame")
    _emit(as_json, r, text)


@cli.command("decode")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="OUT.wav (vocoded audio, 16 kHz) or OUT.npz (decoded pattern).")
@_model_option
@_json_option
def decode_command(source: Path, output: Path, model: Path | None, as_json: bool) -> None:
    """Decode a stream written by `pa-ci encode` into a pattern (.npz) or its vocoded audio (.wav).

    --model may also be a sparse decoder export (`pa-ci export`), as a receiver would hold."""
    from .codec.coder import decode_file
    r = decode_file(source, output, model)
    text = f"wrote {r['output']}: {r['frames']} frames ({r['seconds']:.2f} s)"
    _emit(as_json, r, text)


# ----------------------------------------------------------------------------- pruning
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
                  gain_c: float, alpha: float, gamma: float, output: Path, resume: bool,
                  schedule: Path | None, epoch_iters: int | None, epochs: int | None,
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
    from .codec.export import MEMORY_BUDGET_BYTES
    from .experiment.protocol import PAPER_BASELINE_ITERS, protocol_spec, run_protocol
    _check_data_options(tiny, dataset_dir)
    gains = _gains(gain_a, gain_A, gain_c, alpha, gamma)
    if schedule is not None:
        protocol_only = [f"--{n.replace('_', '-')}" for n in ("rate", "scope", "method", "g", "lam",
                                                              "pa_iters", "finetune_iters")
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
                     dataset=dataset.record(), export_part=scope)
    text = (f"{method} pruning of {scope} weights at rate {rate:g} (test split, {r['eval_items']} items)\n"
            f"  VSTOI before {r['vstoi_before']:.4f}"
            + (f"   after PA training {r['vstoi_pa']:.4f}" if method == "pa" else "")
            + f"   pruned {r['vstoi_pruned']:.4f}   fine-tuned {r['vstoi_finetuned']:.4f} "
            f"({r['finetune_total']} iterations)\n"
            f"  non-zero weights: {r['nonzero_weights']} of {r['eligible_weights']} eligible; "
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
    from .prune.schedule import load_schedule
    from .prune.schedule_run import run_schedule
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
    from .prune.sensitivity import run_analysis, sparsity_levels
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
    from .prune.magnitude import part_totals, sparsity_table
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
    from .codec.coder import load_codec
    from .codec.export import MEMORY_BUDGET_BYTES, export_bytes, from_bytes, write_export
    _check_data_options(tiny, dataset_dir)
    if dataset_dir is not None and not check:
        raise click.UsageError("--dataset needs --check (only the check scores on data)")
    codec = load_codec(model)
    m = codec.model
    dataset = _dataset(tiny, dataset_dir) if check else None   # a bad folder fails before writing
    if fmt == "c":
        from .codec.firmware import write_c
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
        from .train.evaluate import evaluate_export
        from .codec.export import read_export
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
                  alpha: float, gamma: float, workers: int, scheduler: str | None, output: Path,
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

    from .codec.coder import SHIPPED_MODEL
    from .experiment.protocol import JobContext
    from .experiment.sweep import parse_rates, plan_runs, plot_sweep, run_sweep, summary_table
    out = output
    _check_data_options(tiny, dataset_dir)
    specs = plan_runs(parse_rates(rates), scopes, methods, gs, seeds, pa_iters, finetune_iters,
                      baseline_iters=baseline_iters, lam=lam)
    gains = _gains(gain_a, gain_A, gain_c, alpha, gamma)
    job = JobContext.from_model_file(SHIPPED_MODEL if model is None else model, tiny=tiny,
                                     gains=gains.to_dict(), batch_size=batch_size,
                                     work_dir=None if scheduler else str((out / "runs").resolve()))
    if dataset_dir is not None or scheduler is None:
        # the folder given, or the default built (or loaded) once here, not in every worker
        ds = _dataset(tiny, dataset_dir)
        record = ds.record()
        data = {"dataset_path": record["path"]}
    else:                                    # Dask workers build the default in their caches
        from .data.dataset import default_config, planned_record
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


def _add_quiet_options(group: click.Group) -> None:
    """``--quiet`` after the command name too (``pa-ci prune ... --quiet``)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _add_quiet_options(command)
        command.params.append(click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                                           is_eager=True, callback=_set_quiet, help=_QUIET_HELP))


_add_quiet_options(cli)


# ----------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group and maps every failure to one ``error:`` line."""
    warnings.showwarning = _showwarning
    debug = bool(os.environ.get("PA_CI_DEBUG"))
    threads = os.environ.get("NUMBA_NUM_THREADS")
    if threads is not None and not (threads.strip().isdigit() and int(threads) >= 1):
        _fail(f"environment variable NUMBA_NUM_THREADS={threads!r}; expected a positive integer "
              "(threads for the compiled kernels) or unset it", EXIT_USAGE)
    _sigterm_as_interrupt()
    try:
        cli.main(args=argv, prog_name="pa-ci", standalone_mode=False)
    except ParameterError as exc:
        _fail(str(exc), EXIT_USAGE)
    except PaCiError as exc:
        _fail(str(exc), EXIT_RUNTIME)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "), EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), exc.exit_code or EXIT_RUNTIME)
    except OSError as exc:  # an OS refusal that no layer below named: still one clear line
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{(exc.strerror or type(exc).__name__).lower()} ({type(exc).__name__})")
    except Exception as exc:  # a bug: still one line, the traceback on request
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set PA_CI_DEBUG=1 for the traceback)")
    sys.exit(0)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (``kill``) stops a command like Ctrl-C everywhere: one ``error: interrupted`` line
    and status 130 (training defers both to the end of its iteration and checkpoints there)."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):  # noqa: ANN001
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, handler)


def _fail(message: str, status: int = EXIT_RUNTIME) -> None:
    click.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
