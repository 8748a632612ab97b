"""Commands of the signal chain and the data: vstoi, vocode, dataset build."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import (Progress, _ace_params, _emit, _json_option, _output_option, _preset_option,
                      cli)


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
    from ..chain.files import vstoi_of_files
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
    from ..chain.files import vocode_file
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

    from ..data.dataset import build_dataset, default_config
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
