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
from typing import Any, Callable

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
    dataset = build_dataset(config, cache_dir=out, progress=Progress("dataset"))
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
