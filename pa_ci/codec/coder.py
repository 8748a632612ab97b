"""The FRAE codec on files: load a model, encode audio to a stream file, decode it back.

These are the functions behind ``pa-ci encode`` and ``pa-ci decode``, and
:func:`export_run_model` (a finished pruning run's model as its sparse export). They return plain
dictionaries the CLI prints. A model is a :mod:`pa_ci.codec.model_file` file whose header holds
the :class:`~pa_ci.codec.frae.FraeConfig`; without a path, the model shipped in the package is
used. Scoring a model or an export on a dataset (``pa-ci eval``) is :mod:`pa_ci.train.evaluate`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..chain.ace import AceParams, ace, default_params
from ..chain.audio import write_wav
from .bitstream import Stream, index_entropy, measured_bitrate_bps, read_stream, write_stream
from ..chain.files import load_audio_at
from ..errors import ModelFileError, ParameterError
from .export import MEMORY_BUDGET_BYTES, write_export
from .frae import FraeConfig, decode, forward, frae_layout
from .model_file import ModelFile, load_model, model_hash

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "bundled" / "models" / "frae-default.npz"


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
        from .._files import atomic_path
        with atomic_path(output) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, pattern=pattern.astype(np.float32), fs=stream.sample_rate,
                         hop=stream.hop, n_samples=stream.n_samples)
    else:
        from ..chain.vocoder import vocode
        audio = vocode(pattern, params)[: stream.n_samples]
        write_wav(output, 0.9 * audio, stream.sample_rate)
    result = {"output": str(output), "source": str(source), "model_hash": expected_hash}
    if export is not None:
        result.update({"export": str(model), "export_part": export.part,
                       "export_values": export.values})
    result.update(stream_figures(stream, Path(source).stat().st_size, config.codebook_size))
    return result


def _is_export(path: str | os.PathLike | None) -> bool:
    """True for a sparse export file (pa_ci.codec.export: starts with its magic)."""
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
    float64 model, see pa_ci.codec.export).
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


def export_run_model(run_dir: str | os.PathLike, part: str, *,
                     source: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write ``RUN/<part>.pacx``, the sparse float32 export of ``part`` of a finished run's
    ``RUN/model.npz`` (a pruning or schedule run), and return where and how big: ``model``,
    ``source_model`` (``source``, the model the run started from), ``export``, ``export_part``,
    ``size_bytes``, ``dense_float32_bytes`` and ``budget_bytes``."""
    run = Path(run_dir)
    final = load_model(run / "model.npz")
    info = write_export(run / f"{part}.pacx", final.theta, FraeConfig.from_dict(final.config),
                        part=part, model_hash=final.hash)
    return {"model": str(run / "model.npz"), "source_model": None if source is None else str(source),
            "export": str(info.path), "export_part": part, "size_bytes": info.n_bytes,
            "dense_float32_bytes": info.dense_float32_bytes, "budget_bytes": MEMORY_BUDGET_BYTES}
