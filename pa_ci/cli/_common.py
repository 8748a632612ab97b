"""What every ``pa-ci`` command shares: output conventions, progress, options and the
loaders of models and datasets (see :mod:`pa_ci.cli`)."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..codec.config import PRECISIONS, FraeConfig
from ..errors import PaCiError, ParameterError  # noqa: F401 - for the command modules
from ..experiment.spec import METHODS  # noqa: F401 - choices of the command modules
from ..prune.magnitude import SCOPES  # noqa: F401
from ..prune.pruning_aware import PERTURBATIONS  # noqa: F401
from ..train.spsa import Gains

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
    from ..chain.ace import AceParams
    return AceParams.preset(preset)


_preset_option = click.option("--preset", type=click.Choice(["default", "nmt4", "nmt5"]),
                              default="default", show_default=True,
                              help="ACE parameter preset: default (Nucleus-toolbox defaults: "
                                   "22 channels, 8 maxima, 900 pps, calibration and AGC), nmt4 "
                                   "(the NMT 4 chain: no calibration, no AGC), nmt5 (vector-sum "
                                   "envelopes).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")


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
        from ..data.dataset import open_dataset
        return open_dataset(dataset_dir)
    from ..data.dataset import build_dataset, default_config
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
    from ..codec.coder import load_codec
    return load_codec(model).model


#: --precision of `train`, `prune` and `sweep` (the SPSA objective's forward pass).
_precision_option = click.option(
    "--precision", type=click.Choice(list(PRECISIONS)), default=PRECISIONS[0],
    show_default=True,
    help="Arithmetic of the FRAE forward pass in the SPSA objective: float32 is faster (the "
         "VSTOI side and every reported VSTOI stay float64, the float64 codec's).")


#: --finetune-average of `prune` and `sweep` (beyond the paper; see run_protocol).
_finetune_average_option = click.option(
    "--finetune-average", "finetune_average", type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Beyond the paper: also score the mean of the last FRACTION of the fine-tuning iterates "
         "(iterate averaging) as vstoi_finetuned_mean; the model and vstoi_finetuned stay the "
         "last iterate, the paper's protocol.")
