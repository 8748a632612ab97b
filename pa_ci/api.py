"""The short way in: load a codec, prune it at a rate, evaluate it, export it.

::

    import pa_ci
    codec = pa_ci.load()                                    # the shipped model (or a path)
    data = pa_ci.dataset()                                  # the default dataset (or a folder)
    pruned = pa_ci.prune_model(codec, rate=0.55, scope="decoder", dataset=data)
    print(pa_ci.evaluate(pruned, data)["vstoi"])            # mean test VSTOI
    pa_ci.export_model(pruned, "decoder.pacx")              # the sparse file for firmware

Each function is one call into the modules that do the work (:mod:`pa_ci.codec`,
:mod:`pa_ci.data`, :mod:`pa_ci.experiment.protocol`, :mod:`pa_ci.codec.export`), with the paper's defaults; the
command line (``pa-ci eval``, ``prune``, ``export``) calls the same code. (``export_model``,
not ``export``: ``pa_ci.codec.export`` is the module of the file format.) ``import pa_ci`` stays
light: this module and what it imports load on first use of one of these names.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .codec.coder import Codec, load_codec
from .data.dataset import Dataset, build_dataset, default_config, open_dataset
from .errors import ParameterError
from .codec.model_file import load_model, model_hash
from .train.evaluate import evaluate as _evaluate

__all__ = ["load", "dataset", "prune_model", "evaluate", "export_model"]

PathLike = str | os.PathLike


def load(model: PathLike | Codec | None = None) -> Codec:
    """The codec in ``model``: a model file, a run folder (its ``model.npz``), or None for the
    model shipped with the package. A :class:`~pa_ci.codec.Codec` is returned as it is."""
    return model if isinstance(model, Codec) else load_codec(model)


def dataset(path: PathLike | Dataset | None = None, *, tiny: bool = False,
            progress: Callable[..., Any] | None = None) -> Dataset:
    """A dataset: the folder ``path`` names (what ``pa-ci dataset build`` wrote, or its output
    folder when it holds one dataset; loaded, never rebuilt), or, without a path, the default
    dataset on the bundled data (``tiny``: 8 train and 8 test items of 4 s), built once and then
    read from the cache (``$PA_CI_CACHE`` or ``~/.cache/pa-ci``)."""
    if isinstance(path, Dataset):
        return path
    if path is not None:
        if tiny:
            raise ParameterError("a dataset folder and tiny=True cannot be combined (the folder "
                                 "fixes the split)")
        return open_dataset(path)
    return build_dataset(default_config(tiny=tiny), progress=progress)


_dataset = dataset      # for the functions below, whose argument is called dataset


def prune_model(codec: Codec | PathLike | None = None, rate: float = 0.55, scope: str = "whole",
                *, method: str = "pa", pa_iters: int | None = None,
                finetune_iters: int | None = None, dataset: Dataset | PathLike | None = None,
                g: str = "linear", lam: float = 1.0, seed: int = 0, batch_size: int | None = None,
                gains: Any = None, run_dir: PathLike | None = None, resume: bool = False,
                progress: Callable[[str], Any] | None = None) -> Codec:
    """Prune ``codec`` by the paper's protocol (§II-D) and return the pruned, fine-tuned codec.

    ``method="pa"``: ``pa_iters`` SPSA iterations on the pruning-aware loss (Eq. 5/6, g and
    lambda), magnitude pruning of ``rate`` of the ``scope``'s matrix weights, ``finetune_iters``
    fine-tuning iterations with the mask fixed; ``method="magnitude"``: prune, then
    ``finetune_iters`` fine-tuning iterations. The counts are exactly what runs; the defaults are
    the paper's (1000 + 7000 for pa, 8000 for magnitude:
    :func:`pa_ci.experiment.protocol.protocol_spec`), about an hour per run on all 100 train items
    on a 2-core machine, so pass smaller counts and ``batch_size`` for a quick look. SPSA trains
    on ``dataset``'s train split and the figures are scored on its test split (``dataset``: a
    :class:`~pa_ci.data.Dataset`, a folder, or None for the default).

    ``run_dir``: where the run folder goes (resumable with ``resume``; see
    :mod:`pa_ci.experiment.protocol`); None runs in a temporary folder that is removed, the returned codec
    then lives in memory. Its ``model.meta["protocol"]`` holds the figures (``vstoi_before``,
    ``vstoi_pa``, ``vstoi_pruned``, ``vstoi_finetuned``, ``finetune_total``, non-zero weights
    per part) and ``model.mask`` the kept weights. ``gains``: a :class:`pa_ci.train.spsa.Gains`
    (default: the paper's); ``progress(stage)``: as :func:`pa_ci.experiment.protocol.run_protocol`.
    """
    from .experiment.protocol import protocol_spec, run_protocol
    source = load(codec)
    data = _dataset(dataset)
    spec = protocol_spec(rate, scope, method, pa_iters=pa_iters, finetune_iters=finetune_iters,
                         g=g, seed=seed, lam=lam)
    kwargs = dict(train_items=data.train, eval_items=data.test, gains=gains,
                  batch_size=batch_size, progress=progress, dataset=data.record())
    if run_dir is not None:
        run_protocol(source.model, spec, run_dir, resume=resume, **kwargs)
        return load_codec(Path(run_dir) / "model.npz")
    with tempfile.TemporaryDirectory(prefix="pa-ci-prune-") as tmp:
        run_protocol(source.model, spec, Path(tmp) / "run", **kwargs)
        model = load_model(Path(tmp) / "run" / "model.npz")
        return Codec(model.theta, source.config, model_hash(model.theta, model.layout), model)


def evaluate(codec: Codec | PathLike | None = None, dataset: Dataset | PathLike | None = None,
             split: str = "test") -> dict[str, Any]:
    """Mean VSTOI of ``codec``'s coded patterns on a split of ``dataset`` (default: the test
    split of the default dataset) next to the reference VSTOI of the uncoded ACE patterns, with
    the bit rate, the index entropy and the dataset records: what ``pa-ci eval --json`` prints
    (``vstoi``, ``reference_vstoi``, ``vstoi_gap``, ...)."""
    codec = load(codec)
    data = _dataset(dataset)
    return _evaluate(codec, data.split(split), dataset=data.record())


def export_model(codec: Codec | PathLike | None, path: PathLike, *, part: str = "decoder",
           values: str = "float32") -> Any:
    """Write ``part`` of ``codec`` (``decoder``: codebook + decoder, what a CI receiver needs;
    ``encoder``; ``whole``) as the sparse export file ``path`` (:mod:`pa_ci.codec.export`; ``values``:
    float32, float16, int8, int8-row, int16-row) and return its
    :class:`~pa_ci.codec.export.ExportInfo` (``n_bytes``, ``nonzero_weights``, ``max_abs_error``...).
    ``pa_ci.codec.export.read_export(path)`` reads it back."""
    from .codec.export import write_export
    codec = load(codec)
    return write_export(path, codec.theta, codec.config, part=part, values=values,
                        model_hash=codec.hash)
