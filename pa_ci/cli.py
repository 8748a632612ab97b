"""The ``pa-ci`` command line: thin click commands over the library.

Each command parses its options, calls one library function, and prints either readable text or,
with ``--json``, exactly one JSON object on stdout. Progress goes to stderr. Any
:class:`~pa_ci.errors.PaCiError` (and any click usage error) becomes one ``error: ...`` line on
stderr with exit status 2; warnings become one ``warning: ...`` line each.
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

from .errors import PaCiError

EXIT_ERROR = 2


# ----------------------------------------------------------------------------- output helpers
def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as one JSON object (``--json``) or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(payload, sort_keys=False, default=_json_default))
    else:
        click.echo(text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class Progress:
    """A one-line progress display on stderr: count, rate, ETA and an optional figure."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
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


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    text = str(message).splitlines()[0] if str(message) else category.__name__
    click.echo(f"warning: {text}", err=True)


# ----------------------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pa-ci", prog_name="pa-ci")
def cli() -> None:
    """pa-ci: pruning-aware training of zero-delay codecs for cochlear-implant stimulation patterns.

    The signal chain: ACE (16 kHz, 22 channels, 8 maxima, 900 pps) turns audio into a
    stimulation pattern; a sine vocoder turns a pattern back into audio; VSTOI is STOI between the
    clean speech and the vocoded pattern.
    """


def _ace_params(preset: str):
    from .ace import AceParams
    return AceParams.preset(preset)


_preset_option = click.option("--preset", default="default", show_default=True,
                              help="ACE parameter preset (default = DECISIONS.md; nmt4, nmt5).")
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
    from .chain import vstoi_of_files
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
    from .chain import vocode_file
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
              help="Folder of speech files (FLAC/WAV/NIST SPHERE); default: the bundled subset.")
@click.option("--noise", type=click.Path(path_type=Path), default=None,
              help="Folder of noise files; default: the bundled noises (CCITT noise is added).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (default: $PA_CI_CACHE or ~/.cache/pa-ci).")
@click.option("--seed", type=int, default=None, help="Seed of the split, noise and SNR draws.")
@click.option("--tiny", is_flag=True, help="The tiny split (8 train, 8 test, first 4 s).")
@_json_option
def dataset_build_command(speech: Path | None, noise: Path | None, out: Path | None,
                          seed: int | None, tiny: bool, as_json: bool) -> None:
    """Build (or load from the cache) a dataset and print its reference VSTOI per split."""
    dataset = _dataset(tiny, speech, noise, seed, cache_dir=out)
    summary = dataset.summary()
    summary["path"] = str(dataset.path)
    _emit(as_json, summary, _format_dataset_summary(summary))


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


def _dataset(tiny: bool, speech: Path | None = None, noise: Path | None = None,
             seed: int | None = None, cache_dir: Path | None = None):
    """The dataset a command builds, trains or evaluates on (default: the bundled data, cached)."""
    import dataclasses

    from .data import build_dataset, default_config
    config = default_config(tiny=tiny)
    changes: dict[str, Any] = {}
    if speech is not None:
        changes["speech_dir"] = speech
    if noise is not None:
        changes["noise_dir"] = noise
    if seed is not None:
        changes["seed"] = seed
    if changes:
        config = dataclasses.replace(config, **changes)
    return build_dataset(config, cache_dir=cache_dir, progress=Progress("dataset"))


_tiny_option = click.option("--tiny", is_flag=True,
                            help="Use the tiny dataset split (8 train, 8 test items, 4 s each).")
_model_option = click.option("--model", type=click.Path(path_type=Path), default=None,
                             help="Model file or run folder (default: the shipped model).")


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
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--a", "gain_a", type=float, default=1.0, show_default=True, help="SPSA gain a (Eq. 7).")
@click.option("--A", "gain_A", type=float, default=10273.0, show_default=True, help="SPSA stability constant A.")
@click.option("--c", "gain_c", type=float, default=0.020765, show_default=True, help="SPSA perturbation c.")
@click.option("--alpha", type=float, default=0.602, show_default=True)
@click.option("--gamma", type=float, default=0.101, show_default=True)
@click.option("--averaging", type=click.IntRange(min=1), default=1, show_default=True,
              help="SP gradients averaged per iteration (Spall).")
@click.option("--blocking", type=float, default=None,
              help="Reject steps that lower the VSTOI by more than this (Spall's blocking).")
@click.option("--calibrate", "calibrate_step", type=float, default=None,
              help="Set a and A by Spall's calibration for this first step per weight (keeps c).")
@click.option("--enc-hidden", type=click.IntRange(min=1), default=14, show_default=True)
@click.option("--dec-hidden", type=click.IntRange(min=1), default=14, show_default=True)
@click.option("--latent-dim", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--codebook-size", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--output-maxima", type=click.IntRange(min=0), default=8, show_default=True,
              help="Decoder keeps this many largest channels per frame (0: all).")
@_tiny_option
@_json_option
def train_command(output: Path, iters: int, seed: int, resume: bool, init_model: Path | None,
                  warm_start: int, batch_size: int | None, checkpoint_every: int, gain_a: float,
                  gain_A: float, gain_c: float, alpha: float, gamma: float, averaging: int,
                  blocking: float | None, calibrate_step: float | None, enc_hidden: int, dec_hidden: int, latent_dim: int,
                  codebook_size: int, output_maxima: int, tiny: bool, as_json: bool) -> None:
    """Train an FRAE by SPSA on mean VSTOI over the train split (paper §II-C, Eq. 7).

    A seeded initialisation and a short frame-MSE warm start come first (or --init MODEL).
    Progress (iteration, VSTOI, ETA) goes to stderr; Ctrl-C checkpoints, --resume continues.
    """
    from .codec import load_codec
    from .frae import FraeConfig
    from .spsa import Gains
    from .training import TrainOptions, train

    config = FraeConfig(enc_hidden=enc_hidden, dec_hidden=dec_hidden, latent_dim=latent_dim,
                        codebook_size=codebook_size, output_maxima=output_maxima)
    init_theta = init_name = None
    if init_model is not None:
        codec = load_codec(init_model)
        if codec.config != config:
            raise click.UsageError(f"{init_model}: its FRAE config differs from the size options")
        init_theta, init_name = codec.theta, f"{Path(init_model).name} {codec.hash}"
    options = TrainOptions(iters=iters, seed=seed, batch_size=batch_size, averaging=averaging,
                           blocking=blocking, checkpoint_every=checkpoint_every,
                           warm_start_steps=0 if init_model is not None else warm_start,
                           calibrate_step=calibrate_step,
                           gains=Gains(a=gain_a, A=gain_A, c=gain_c, alpha=alpha, gamma=gamma))
    dataset = _dataset(tiny)
    info = {"key": dataset.key, "config": dataset.config.to_dict(), "split": "train"}
    path = train(output, dataset.train, config=config, options=options, dataset_info=info,
                 init_theta=init_theta, init_name=init_name, resume=resume,
                 progress=Progress("train"), warm_start_progress=Progress("warm start"))
    codec = load_codec(path)
    meta = codec.model.meta
    result = {"model": str(path), "run": str(output), "iterations": meta.get("iterations"),
              "train_vstoi": meta.get("train_vstoi"), "vstoi_initial": meta.get("vstoi_initial"),
              "seed": seed, "model_hash": codec.hash, "n_weights": codec.n_weights}
    text = (f"wrote {path} after {result['iterations']} SPSA iterations: train VSTOI "
            f"{result['train_vstoi']:.4f}")
    _emit(as_json, result, text)


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@_tiny_option
@_json_option
def eval_command(model: Path | None, split: str, tiny: bool, as_json: bool) -> None:
    """Mean VSTOI of MODEL's coded patterns (default: the shipped model) next to the uncoded
    reference VSTOI, with the bit rate and the index entropy."""
    from .codec import evaluate, load_codec
    codec = load_codec(model)
    dataset = _dataset(tiny)
    r = evaluate(codec, dataset.split(split))
    r["split"] = split
    text = (f"{r['model']} ({r['n_weights']} weights + {r['n_parameters'] - r['n_weights']} codebook "
            f"entries), {split} split, {r['n_items']} items, {r['seconds']:.0f} s\n"
            f"  VSTOI coded {r['vstoi']:.4f}   reference (uncoded ACE) {r['reference_vstoi']:.4f}   "
            f"gap {r['vstoi_gap']:+.4f}\n"
            f"  bit rate {r['bitrate_bps']:.0f} bit/s nominal, {r['measured_bitrate_bps']:.0f} bit/s "
            f"measured (streams with headers); index entropy {r['index_entropy_bits']:.2f} bit "
            f"({r['entropy_bitrate_bps']:.0f} bit/s), {r['codewords_used']} codewords used")
    _emit(as_json, r, text)


@cli.command("encode")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stream file to write (.frae).")
@_model_option
@_json_option
def encode_command(source: Path, output: Path, model: Path | None, as_json: bool) -> None:
    """Code SOURCE audio: ACE pattern -> FRAE indices, packed at 6 bits per frame."""
    from .codec import encode_file
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
    """Decode a stream written by `pa-ci encode` into a pattern (.npz) or its vocoded audio (.wav)."""
    from .codec import decode_file
    r = decode_file(source, output, model)
    text = f"wrote {r['output']}: {r['frames']} frames ({r['seconds']:.2f} s)"
    _emit(as_json, r, text)


# ----------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group and maps every failure to one ``error:`` line."""
    warnings.showwarning = _showwarning
    debug = bool(os.environ.get("PA_CI_DEBUG"))
    try:
        cli.main(args=argv, prog_name="pa-ci", standalone_mode=False)
    except PaCiError as exc:
        _fail(str(exc))
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except click.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "))
    except Exception as exc:  # a bug: still one line, the traceback on request
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set PA_CI_DEBUG=1 for the traceback)")
    sys.exit(0)


def _fail(message: str, status: int = EXIT_ERROR) -> None:
    click.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
