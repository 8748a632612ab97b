"""Evaluation: the mean VSTOI of a model's (or an export's) coded patterns on dataset items.

Paper §II-C scores a codec by the mean VSTOI of its decoded stimulation patterns; these are the
functions behind ``pa-ci eval`` (and ``pa-ci export --check``). :func:`evaluate` scores a
:class:`~pa_ci.codec.coder.Codec` with the training objective (:class:`VstoiObjective`), next to
the items' reference (uncoded) VSTOI, with the bit rate and the index entropy;
:func:`evaluate_export` scores what ships, a sparse export (:mod:`pa_ci.codec.export`), closed
loop against its float64 source model; :class:`DecodedScorer` scores any decoded patterns on
fixed items. The results are plain dictionaries the CLI prints.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..chain.ace import AceParams, default_params
from ..chain.stoi import Reference
from ..chain.vstoi import ReferenceSet
from ..chain.vocoder import envelopes
from ..codec.bitstream import index_entropy, measured_bitrate_bps, stream_size
from ..codec.coder import Codec, load_codec
from ..codec.export import ExportedModel, read_export
from ..codec.frae import FraeConfig, decode, forward, frae_layout
from ..errors import ModelFileError, ParameterError
from .objective import VstoiObjective

__all__ = ["DecodedScorer", "trained_on", "dataset_figures", "evaluate", "load_export_for",
           "evaluate_export"]


class DecodedScorer:
    """VSTOI of decoded patterns on fixed ``items`` (the clean references are analysed once).

    :meth:`scores` takes the stacked decoded patterns of all items (rows ``offsets[i]:offsets[i+1]``
    are item i, as :func:`pa_ci.codec.frae.forward` returns them), so several decoders (an export's
    value types, pruning rates) can be scored on the same items without redoing the references.
    """

    def __init__(self, items: Sequence[Any], params: AceParams | None = None) -> None:
        self.params = params or default_params()
        self.items = list(items)
        if not self.items:
            raise ParameterError("VSTOI needs at least one item")
        self._set = ReferenceSet([Reference(np.asarray(it.clean, dtype=np.float64),
                                            int(self.params.fs)) for it in self.items])
        self._freqs = np.asarray(self.params.centre_frequencies, dtype=np.float64)

    def scores(self, decoded: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """VSTOI of each item (n_items,)."""
        env = envelopes(np.ascontiguousarray(decoded, dtype=np.float64), self.params)
        return self._set.vstoi_envelopes(env, self._freqs, int(self.params.hop),
                                         offsets=np.asarray(offsets, dtype=np.int64))


def _figures(enc_theta: np.ndarray, config: FraeConfig, items: Sequence[Any], params: AceParams,
             scores: np.ndarray, indices: np.ndarray, offsets: np.ndarray) -> dict[str, Any]:
    reference = np.array([it.reference_vstoi for it in items], dtype=np.float64)
    n_frames = int(indices.size)
    seconds = sum(len(it.clean) for it in items) / params.fs
    stream_bytes = sum(stream_size(n, config.n_bits) for n in np.diff(offsets))
    h = index_entropy(indices, config.codebook_size)
    layout = frae_layout(config)
    return {
        "vstoi": float(scores.mean()), "reference_vstoi": float(reference.mean()),
        "vstoi_gap": float(reference.mean() - scores.mean()),
        "vstoi_min": float(scores.min()), "vstoi_max": float(scores.max()),
        "n_items": len(items), "seconds": seconds, "frames": n_frames,
        "bitrate_bps": config.bitrate_bps,
        "measured_bitrate_bps": measured_bitrate_bps(stream_bytes, n_frames, config.frame_rate),
        "index_entropy_bits": h, "entropy_bitrate_bps": h * config.frame_rate,
        "codewords_used": int(np.unique(indices).size),
        "n_weights": int(layout.count(parts=("encoder", "decoder"))),
        "n_parameters": int(layout.size),
        "n_matrix_weights": int(layout.count(kinds=("weight",))),
    }


def trained_on(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the dataset a model was trained on (key and item counts) from its meta:
    ``meta["dataset"]`` (``pa-ci train``, ``pa-ci prune``), or None when it records none."""
    record = meta.get("dataset") if isinstance(meta, dict) else None
    if isinstance(record, dict) and isinstance(record.get("key"), str):
        return dict(record)
    return None


def dataset_figures(dataset: dict[str, Any] | None, meta: dict[str, Any] | None) -> dict[str, Any]:
    """What an evaluation records of the data: ``dataset`` (the record of the dataset scored on),
    ``trained_on`` (the model's, or None) and ``same_dataset`` (None when either is unknown)."""
    trained = trained_on(meta or {})
    scored = None if dataset is None else dataset.get("key")
    same = None if trained is None or scored is None else trained["key"] == scored
    return {"dataset": dataset, "trained_on": trained, "same_dataset": same}


def evaluate(codec: Codec, items: Sequence[Any], params: AceParams | None = None, *,
             dataset: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean VSTOI of the coded patterns on ``items`` next to their reference (uncoded) VSTOI.

    ``dataset``: the record of the dataset the items come from (:meth:`pa_ci.data.Dataset.record`);
    the result then says it (``dataset``) and the dataset the model was trained on
    (``trained_on``, :func:`dataset_figures`).
    """
    params = params or default_params()
    objective = VstoiObjective(items, codec.config, params)
    scores = objective.evaluate(codec.theta)
    out = forward(codec.theta, codec.config, [it.pattern for it in items])
    r = _figures(codec.theta, codec.config, items, params, scores, out.indices, out.offsets)
    r.update({"model": str(codec.model.path), "model_hash": codec.hash})
    if dataset is not None:
        r.update(dataset_figures(dataset, codec.model.meta))
    return r


def load_export_for(path: str | os.PathLike, codec: Codec | None) -> ExportedModel:
    """Read an export to evaluate against ``codec`` (its source model) or alone (``whole`` part).

    Checks that the export belongs to ``codec`` (same config and model hash); without a model only
    a ``whole`` export carries both sides. Errors are one ModelFileError line naming the file.
    """
    export = read_export(path)
    if codec is None and export.part != "whole" and export.model_hash:
        shipped = load_codec()  # an export of the shipped model needs no MODEL argument
        if export.model_hash == shipped.hash:
            codec = shipped
    if codec is None:
        if export.part != "whole":
            raise ModelFileError(f"{path}: an export of the {export.part} part has no "
                                 f"{'encoder' if export.part == 'decoder' else 'output layer'}; "
                                 "expected a whole export, or give the model it came from "
                                 "(pa-ci eval MODEL --export FILE)")
        return export
    if export.config != codec.config:
        raise ModelFileError(f"{path}: exported from a FRAE of another size than "
                             f"{codec.model.path}; expected an export of that model")
    if export.model_hash and export.model_hash != codec.hash:
        raise ModelFileError(f"{path}: exported from model {export.model_hash}, not from "
                             f"{codec.model.path} ({codec.hash}); expected an export of that model")
    return export


def evaluate_export(export: ExportedModel, items: Sequence[Any], codec: Codec | None = None,
                    params: AceParams | None = None, *, name: str = "") -> dict[str, Any]:
    """VSTOI of what ships: the export's dequantised weights wherever the export carries them,
    the float64 model (``codec``) elsewhere.

    The deployment this models: the transmitter keeps the float64 encoder (``enc.*``), but the
    copy of the decoder it runs for the feedback (research §3) must be the receiver's decoder,
    bit for bit: the shipped decoder GRU is chaotic when it runs open loop (a 1e-15 change of its
    weights moves decoded frames by up to 0.85 on some test items), so an encoder whose copy
    differs from the receiver loses track of it. A ``decoder`` export is therefore scored closed
    loop: float64 ``enc.*``, the export's codebook and decoder (in the encoder's copy and in the
    receiver). An ``encoder`` export (enc.*, codebook and decoder GRU dequantised) is scored with
    the same dequantised GRU at the receiver and the model's float64 output layer; a ``whole``
    export uses the export alone (``codec`` may be None).

    With ``codec``: ``vstoi_float64`` (the model on the same items), ``vstoi_loss`` = float64 -
    export VSTOI, ``index_agreement`` (fraction of frames whose index equals the float64 model's)
    and, for a decoder export, ``vstoi_open_loop``: the float64 encoder's indices (its own
    float64 decoder copy) decoded by the export, i.e. a transmitter that did not take the export.
    """
    params = params or default_params()
    config = export.config
    if codec is None and export.part != "whole":
        raise ParameterError("evaluating a decoder or encoder export needs its source model")
    theta = export.theta if codec is None else np.where(export.present, export.theta, codec.theta)
    patterns = [it.pattern for it in items]
    scorer = DecodedScorer(items, params)
    out = forward(theta, config, patterns)
    scores = scorer.scores(out.decoded, out.offsets)
    r = _figures(theta, config, items, params, scores, out.indices, out.offsets)
    r.update({"export": name, "export_part": export.part, "export_values": export.values,
              "model_hash": export.model_hash})
    if codec is not None:
        ref = forward(codec.theta, config, patterns)
        base = scorer.scores(ref.decoded, ref.offsets)
        r.update({"model": str(codec.model.path), "vstoi_float64": float(base.mean()),
                  "vstoi_loss": float(base.mean() - scores.mean()),
                  "index_agreement": float(np.mean(ref.indices == out.indices))})
        if export.part == "decoder":
            open_loop = decode(export.theta, config, ref.indices, offsets=ref.offsets)
            r["vstoi_open_loop"] = float(scorer.scores(open_loop, ref.offsets).mean())
    return r
