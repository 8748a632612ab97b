"""The FRAE codec on files and datasets: load a model, encode/decode streams, evaluate.

These are the functions behind ``pa-ci encode``, ``pa-ci decode`` and ``pa-ci eval``. They return
plain dictionaries the CLI prints. A model is a :mod:`pa_ci.params` file whose header holds the
:class:`~pa_ci.frae.FraeConfig`; without a path, the model shipped in the package is used.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .ace import AceParams, ace, default_params
from .audio import write_wav
from .bitstream import (Stream, index_entropy, measured_bitrate_bps, read_stream, stream_size,
                        write_stream)
from .chain import load_audio_at
from .errors import ModelFileError, ParameterError
from .frae import FraeConfig, decode, forward, frae_layout
from .params import ModelFile, load_model, model_hash

SHIPPED_MODEL = Path(__file__).resolve().parent / "bundled" / "models" / "frae-default.npz"


@dataclass
class Codec:
    """A loaded model: parameters, FRAE config, its hash (identifies streams) and the file."""

    theta: np.ndarray
    config: FraeConfig
    hash: str
    model: ModelFile

    @property
    def n_weights(self) -> int:
        """Network parameters (weights and biases of encoder and decoder, the paper's ~3300)."""
        return int(self.model.layout.count(parts=("encoder", "decoder")))


def load_codec(path: str | os.PathLike | None = None) -> Codec:
    """Load a model file (or run folder); ``None`` loads the shipped model."""
    p = Path(path) if path is not None else SHIPPED_MODEL
    if path is None and not p.exists():
        raise ModelFileError(f"{p}: the shipped model is missing from this installation")
    model = load_model(p)
    try:
        config = FraeConfig.from_dict(model.config)
    except (ParameterError, TypeError) as exc:
        raise ModelFileError(f"{model.path}: header holds no valid FRAE config ({exc})") from None
    expected = frae_layout(config)
    if model.layout != expected:
        model = load_model(p, expected_layout=expected)  # raises, naming the tensor that differs
    return Codec(model.theta, config, model_hash(model.theta, model.layout), model)


def stream_figures(stream: Stream, n_bytes: int, codebook_size: int) -> dict[str, Any]:
    """Nominal and measured bit rate (whole file) and the index entropy of a stream."""
    seconds = stream.n_frames / stream.frame_rate if stream.n_frames else 0.0
    h = index_entropy(stream.indices, codebook_size)
    return {"frames": stream.n_frames, "seconds": seconds, "bytes": n_bytes,
            "bitrate_bps": stream.nominal_bitrate_bps,
            "measured_bitrate_bps": (measured_bitrate_bps(n_bytes, stream.n_frames, stream.frame_rate)
                                     if stream.n_frames else math.nan),
            "index_entropy_bits": h, "entropy_bitrate_bps": h * stream.frame_rate}


def encode_file(source: str | os.PathLike, output: str | os.PathLike,
                model: str | os.PathLike | None = None, params: AceParams | None = None) -> dict[str, Any]:
    """audio -> ACE pattern -> FRAE indices -> stream file (atomically)."""
    params = params or default_params()
    codec = load_codec(model)
    fs = int(params.fs)
    x = load_audio_at(source, fs)
    pattern = ace(x, fs, params)
    out = forward(codec.theta, codec.config, [pattern])
    stream = Stream(indices=out.indices.astype(np.int64), n_bits=codec.config.n_bits,
                    model_hash=codec.hash, n_samples=int(len(x)), sample_rate=fs, hop=int(params.hop))
    path = write_stream(output, stream)
    result = {"output": str(path), "source": str(source), "model": str(codec.model.path),
              "model_hash": codec.hash}
    result.update(stream_figures(stream, path.stat().st_size, codec.config.codebook_size))
    return result


def decode_file(source: str | os.PathLike, output: str | os.PathLike,
                model: str | os.PathLike | None = None, params: AceParams | None = None) -> dict[str, Any]:
    """stream file -> decoded pattern (``.npz``: array ``pattern``) or its vocoded audio (``.wav``)."""
    params = params or default_params()
    output = Path(output)
    kind = output.suffix.lower()
    if kind not in (".wav", ".npz"):
        raise ParameterError(f"{output}: output must end in .wav (vocoded audio) or .npz (pattern)")
    theta, config, expected_hash, export = _decoder(model)
    stream = read_stream(source, expected_model_hash=expected_hash)
    if stream.sample_rate != int(params.fs) or stream.hop != int(params.hop):
        raise ParameterError(f"{source}: coded at {stream.sample_rate} Hz with hop {stream.hop}; "
                             f"these ACE parameters use {params.fs} Hz and hop {params.hop}")
    pattern = decode(theta, config, stream.indices)
    if kind == ".npz":
        from ._files import atomic_path
        with atomic_path(output) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, pattern=pattern.astype(np.float32), fs=stream.sample_rate,
                         hop=stream.hop, n_samples=stream.n_samples)
    else:
        from .vocoder import vocode
        audio = vocode(pattern, params)[: stream.n_samples]
        write_wav(output, 0.9 * audio, stream.sample_rate)
    result = {"output": str(output), "source": str(source), "model_hash": expected_hash}
    if export is not None:
        result.update({"export": str(model), "export_part": export.part,
                       "export_values": export.values})
    result.update(stream_figures(stream, Path(source).stat().st_size, config.codebook_size))
    return result


def _is_export(path: str | os.PathLike | None) -> bool:
    """True for a sparse export file (pa_ci.export: starts with its magic)."""
    from .export import MAGIC
    if path is None or not Path(path).is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _decoder(model: str | os.PathLike | None):
    """(theta, config, model hash streams must carry, export or None) for decoding.

    ``model`` may be a model file, a run folder or a sparse export (``pa-ci export``) of the
    ``decoder`` or ``whole`` part, which is what a receiver holds: it decodes streams of the model
    it was exported from (its hash), with the export's value type (float32: within 1e-5 of the
    float64 model, see pa_ci.export).
    """
    if not _is_export(model):
        codec = load_codec(model)
        return codec.theta, codec.config, codec.hash, None
    from .export import read_export
    export = read_export(model)
    if export.part not in ("decoder", "whole"):
        raise ModelFileError(f"{model}: an export of the {export.part} part cannot decode; "
                             "export the decoder part (pa-ci export --part decoder)")
    if not export.model_hash:
        raise ModelFileError(f"{model}: the export does not record its source model's hash, so "
                             "streams cannot be checked against it; export it with pa-ci export")
    return export.theta, export.config, export.model_hash, export


class DecodedScorer:
    """VSTOI of decoded patterns on fixed ``items`` (the clean references are analysed once).

    :meth:`scores` takes the stacked decoded patterns of all items (rows ``offsets[i]:offsets[i+1]``
    are item i, as :func:`pa_ci.frae.forward` returns them), so several decoders (an export's
    value types, pruning rates) can be scored on the same items without redoing the references.
    """

    def __init__(self, items: Sequence[Any], params: AceParams | None = None) -> None:
        from .stoi import Reference, ReferenceSet
        self.params = params or default_params()
        self.items = list(items)
        if not self.items:
            raise ParameterError("VSTOI needs at least one item")
        self._set = ReferenceSet([Reference(np.asarray(it.clean, dtype=np.float64),
                                            int(self.params.fs)) for it in self.items])
        self._freqs = np.asarray(self.params.centre_frequencies, dtype=np.float64)

    def scores(self, decoded: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """VSTOI of each item (n_items,)."""
        from .vocoder import envelopes
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
    from .objective import VstoiObjective

    params = params or default_params()
    objective = VstoiObjective(items, codec.config, params)
    scores = objective.evaluate(codec.theta)
    out = forward(codec.theta, codec.config, [it.pattern for it in items])
    r = _figures(codec.theta, codec.config, items, params, scores, out.indices, out.offsets)
    r.update({"model": str(codec.model.path), "model_hash": codec.hash})
    if dataset is not None:
        r.update(dataset_figures(dataset, codec.model.meta))
    return r


def load_export_for(path: str | os.PathLike, codec: Codec | None):
    """Read an export to evaluate against ``codec`` (its source model) or alone (``whole`` part).

    Checks that the export belongs to ``codec`` (same config and model hash); without a model only
    a ``whole`` export carries both sides. Errors are one ModelFileError line naming the file.
    """
    from .export import read_export
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


def evaluate_export(export: Any, items: Sequence[Any], codec: Codec | None = None,
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
