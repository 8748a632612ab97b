"""Declared sizes are checked against sane limits and the real file length before anything is
allocated: FRAE configs, export headers, model-file members, audio sampling rates."""
from __future__ import annotations

import io
import json
import os
import re
import struct
import zipfile
import zlib

import numpy as np
import pytest
import soundfile as sf

from pa_ci.chain import audio

from pa_ci.codec import export
from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.errors import AudioError, ModelFileError, ParameterError
from pa_ci.codec.frae import (MAX_CODEBOOK_SIZE, MAX_HIDDEN, MAX_PARAMETERS, FraeConfig, _parameter_count,
                        frae_layout)
from pa_ci.codec.model_file import MAX_ABS_PARAMETER, load_model, model_hash, save_model


# ----------------------------------------------------------------------------- FraeConfig
@pytest.mark.parametrize("kw, words", [
    (dict(enc_hidden=100_000), "at most 4096"), (dict(dec_hidden=MAX_HIDDEN + 1), "at most 4096"),
    (dict(codebook_size=2**40), "at most 65536"), (dict(codebook_size=MAX_CODEBOOK_SIZE + 1), "16 bits"),
    (dict(n_channels=257, output_maxima=0), "at most 256"), (dict(latent_dim=10**9), "at most 256"),
    (dict(enc_hidden=4096, dec_hidden=4096), f"at most {MAX_PARAMETERS}"),
])
def test_config_limits(kw, words):
    with pytest.raises(ParameterError, match=words):
        FraeConfig(**kw)


def test_largest_configs_within_the_limits_are_accepted_and_counted_exactly():
    for cfg in (FraeConfig(codebook_size=MAX_CODEBOOK_SIZE), FraeConfig(enc_hidden=2000, dec_hidden=1),
                FraeConfig(n_channels=256, output_maxima=8), FraeConfig(n_channels=3, enc_hidden=2, dec_hidden=5,
                                                                       latent_dim=4, codebook_size=7,
                                                                       output_maxima=1)):
        assert frae_layout(cfg).size == _parameter_count(cfg.n_channels, cfg.enc_hidden, cfg.dec_hidden,
                                                         cfg.latent_dim, cfg.codebook_size) <= MAX_PARAMETERS


# ----------------------------------------------------------------------------- exports
def _export(fields: dict, payload: bytes = b"") -> bytes:
    base = dict(magic=export.MAGIC, version=1, vtype=0, part=0, flags=0, C=22, He=14, Hd=14, D=2,
                K=64, maxima=8, n_tensors=7, frame_rate=16000 / 18, hash=bytes(8),
                payload_size=len(payload))
    base.update(fields)
    head = export._HEAD.pack(*base.values(), zlib.crc32(payload))
    return head + export._CRC.pack(zlib.crc32(head)) + payload


@pytest.mark.parametrize("fields, words", [
    (dict(He=65535, Hd=65535, C=65535), "n_channels = 65535"),
    (dict(K=2**32 - 1), "codebook_size = 4294967295"),
    (dict(Hd=65535), "dec_hidden = 65535"),
    (dict(He=1000, Hd=1000), "needs at least"),          # within the limits, but no payload
    (dict(K=65536), "needs at least"),
])
def test_crafted_export_headers_fail_before_allocating(fields, words):
    with pytest.raises(ModelFileError, match=words):
        export.from_bytes(_export(fields), "x.pacx")


def test_least_payload_is_a_lower_bound_of_real_exports():
    rng = np.random.default_rng(0)
    cfg = FraeConfig(n_channels=9, enc_hidden=5, dec_hidden=4, latent_dim=3, codebook_size=300)
    layout = frae_layout(cfg)
    for values in export.VALUE_TYPES:
        for part in export.PARTS:
            specs = export._part_specs(layout, part)
            for keep in (0.0, 0.3, 1.0):
                theta = rng.uniform(0.5, 1.0, layout.size) * (rng.uniform(size=layout.size) < keep)
                theta[layout.mask(kinds=("bias", "codebook"))] = 0.5
                blob = export.export_bytes(theta, cfg, part=part, values=values)
                assert export._least_payload(specs, values) <= len(blob) - export.HEADER_SIZE
            theta = np.zeros(layout.size)
            blob = export.export_bytes(theta, cfg, part=part, values=values)  # all pruned: the least
            assert export._least_payload(specs, values) == len(blob) - export.HEADER_SIZE


# ----------------------------------------------------------------------------- model files
def _npy_claiming(shape, descr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(64)


def _rezip(tmp_path, **members: bytes):
    with zipfile.ZipFile(SHIPPED_MODEL) as zf:
        m = {n: zf.read(n) for n in zf.namelist()}
    m.update({k.replace("_", "."): v for k, v in members.items()})
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in m.items():
            zf.writestr(n, d)
    return path


@pytest.mark.parametrize("member, shape, descr", [("theta_npy", (2**33,), "<f8"),
                                                  ("theta_npy", (2**62, 4), "<f8"),
                                                  ("mask_npy", (2**36,), "|b1")])
def test_model_members_claiming_huge_arrays_fail_before_allocating(tmp_path, member, shape, descr):
    path = _rezip(tmp_path, **{member: _npy_claiming(shape, descr)})
    with pytest.raises(ModelFileError, match="declares shape"):
        load_model(path)


def test_model_member_declaring_a_huge_size_fails_before_reading(tmp_path):
    path = _rezip(tmp_path)
    b = bytearray(path.read_bytes())
    for sig, at_size, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = 0
        while (at := b.find(sig, at)) >= 0:
            if b[at + name_at:at + name_at + 9] == b"theta.npy":
                struct.pack_into("<I", b, at + at_size, 0xFFFFFFF0)
            at += 4
    path.write_bytes(bytes(b))
    with pytest.raises(ModelFileError, match="theta.npy declares 4294967280 bytes"):
        load_model(path)


def test_model_with_huge_but_finite_values_is_refused(tmp_path):
    m = load_model(SHIPPED_MODEL)
    save_model(tmp_path / "huge.npz", m.theta * 1e300, m.layout, m.config, m.meta, m.mask)
    with pytest.raises(ModelFileError, match=re.escape(f"beyond ±{MAX_ABS_PARAMETER:g}")):
        load_model(tmp_path / "huge.npz")
    assert model_hash(m.theta, m.layout) == m.hash  # the shipped model itself is fine


# ----------------------------------------------------------------------------- audio
@pytest.mark.parametrize("rate", [1, 999, 768_001, 0xFFFFFFFF])
def test_audio_with_an_absurd_sampling_rate_is_refused(tmp_path, rate):
    path = tmp_path / "a.wav"
    sf.write(path, np.sin(np.arange(2000) / 5.0) * 0.3, 16000)
    b = bytearray(path.read_bytes())
    struct.pack_into("<I", b, 24, rate)
    path.write_bytes(bytes(b))
    with pytest.raises(AudioError, match="sampling rate|cannot be read"):
        audio.read_audio(path)
    with pytest.raises(AudioError, match="sample rates must be in"):
        audio.resample(np.ones(10), rate, 16000)


def test_usual_sampling_rates_are_read(tmp_path):
    for rate in (audio.MIN_SAMPLE_RATE, 8000, 44100, 192000, audio.MAX_SAMPLE_RATE):
        sf.write(tmp_path / "a.wav", np.sin(np.arange(4000) / 5.0) * 0.3, rate)
        assert audio.read_audio(tmp_path / "a.wav")[1] == rate


# ----------------------------------------------------------------------------- the kernels
def test_forward_maxima_survives_an_overflowing_theta():
    """NaN outputs (an overflowing theta) once made forward_maxima write 22 kept channels into
    an 8-wide row (heap corruption, abort): run in a child process so a regression is one failure
    (a subprocess, not fork: fork is unsafe once the kernels' OpenMP threads have started)."""
    import subprocess
    import sys
    code = """
import numpy as np
from pa_ci.codec.frae import FraeConfig, forward_maxima, init_params
cfg = FraeConfig()
x = [np.random.default_rng(0).uniform(0, 1, (200, 22))]
for _ in range(3):
    chans, vals = forward_maxima((init_params(cfg, 0) * 1e300)[None], cfg, x)
assert chans.shape == (1, 200, 8)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
