"""pa_ci.codec.bitstream: packing against a bit-string oracle, the header layout, every way to fail."""
from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_ci.codec import bitstream as bs
from pa_ci.errors import BitstreamError, PaCiError, ParameterError
from naive.codec import oracle_pack, oracle_unpack

HASH = "0123456789abcdef"
OTHER = "fedcba9876543210"


def _stream(n_frames: int = 25, n_bits: int = 6, seed: int = 0, hop: int = 18,
            model_hash: str = HASH, short: int = 5) -> bs.Stream:
    """A stream whose last frame is partial (``short`` samples missing) unless n_frames == 0."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 1 << n_bits, n_frames)
    n_samples = max(0, n_frames * hop - short) if n_frames else 0
    return bs.Stream(indices=idx, n_bits=n_bits, model_hash=model_hash, n_samples=n_samples,
                     sample_rate=16000, hop=hop)


# ---------------------------------------------------------------- packing

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 16).flatmap(
    lambda b: st.tuples(st.just(b), st.lists(st.integers(0, (1 << b) - 1), max_size=70))))
def test_pack_matches_bit_string_oracle_and_round_trips(case):
    n_bits, values = case
    packed = bs.pack_indices(np.array(values, dtype=np.int64), n_bits)
    assert packed == oracle_pack(values, n_bits)
    assert len(packed) == math.ceil(len(values) * n_bits / 8)
    back = bs.unpack_indices(packed, len(values), n_bits)
    assert back.dtype == np.int64 and back.tolist() == values
    assert oracle_unpack(packed, len(values), n_bits) == values


def test_pack_known_bytes():
    # 6-bit MSB-first: 1 = 000001, 63 = 111111, 2 = 000010 -> 00000111 11110000 10(000000)
    assert bs.pack_indices(np.array([1, 63, 2]), 6) == bytes([0b00000111, 0b11110000, 0b10000000])
    assert bs.pack_indices(np.array([0xABCD]), 16) == b"\xab\xcd"
    assert bs.pack_indices(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1) == b"\xb0\x80"
    assert bs.pack_indices(np.zeros(0, dtype=np.int64), 6) == b""
    assert bs.unpack_indices(b"", 0, 6).shape == (0,)


def test_pack_accepts_any_integer_dtype():
    for dt in (np.uint8, np.int16, np.uint32, np.int64, np.uint64):
        assert bs.pack_indices(np.array([5, 63, 0], dtype=dt), 6) == oracle_pack([5, 63, 0], 6)


@pytest.mark.parametrize("indices, n_bits", [
    ([64], 6), ([-1], 6), ([2], 1), ([65536], 16), ([1.0], 6), ([[1, 2]], 6), ([1], 0), ([1], 17),
    ([1], True), ([1], 6.0)])
def test_pack_rejects_what_does_not_fit(indices, n_bits):
    with pytest.raises(ParameterError):
        bs.pack_indices(np.array(indices), n_bits)


def test_unpack_rejects_wrong_length():
    with pytest.raises(ParameterError, match="expected 3"):
        bs.unpack_indices(b"\x00\x00", 4, 6)
    with pytest.raises(ParameterError, match="expected 3"):
        bs.unpack_indices(b"\x00" * 4, 4, 6)


def test_large_stream_round_trip_is_fast_enough():
    # one hour at 888.9 frames/s
    idx = np.random.default_rng(1).integers(0, 64, 3_200_000)
    assert np.array_equal(bs.unpack_indices(bs.pack_indices(idx, 6), idx.size, 6), idx)


# ---------------------------------------------------------------- Stream and the file layout

def test_stream_properties_and_validation():
    s = _stream(n_frames=889, n_bits=6)
    assert s.n_frames == 889
    assert s.frame_rate == pytest.approx(16000 / 18)
    assert s.nominal_bitrate_bps == pytest.approx(6 * 16000 / 18)
    assert round(s.nominal_bitrate_bps) == 5333
    assert s.indices.dtype == np.int64 and not s.indices.flags.writeable
    with pytest.raises(ParameterError, match="ceil"):  # n_frames inconsistent with n_samples
        bs.Stream(indices=np.zeros(3, int), n_bits=6, model_hash=HASH, n_samples=18 * 3 + 1)
    with pytest.raises(ParameterError, match="fit in 6 bits"):
        bs.Stream(indices=np.array([64]), n_bits=6, model_hash=HASH, n_samples=18)
    for bad in ("0123", "0123456789abcdeg", "0123 4567 89abcd", 123):
        with pytest.raises(ParameterError, match="16 hexadecimal"):
            bs.Stream(indices=np.array([1]), n_bits=6, model_hash=bad, n_samples=18)
    for field, bad in (("hop", 0), ("hop", 70000), ("sample_rate", 0), ("n_samples", -1)):
        kw = dict(indices=np.array([1]), n_bits=6, model_hash=HASH, n_samples=18, hop=18)
        kw[field] = bad
        with pytest.raises(ParameterError, match=field):
            bs.Stream(**kw)
    # the frame count is the ACE front end's
    from pa_ci.chain.ace import n_frames as ace_n_frames
    for n in (0, 1, 17, 18, 19, 16000):
        assert bs._n_frames(n, 18) == ace_n_frames(n, 18)


def test_stream_equality_and_upper_case_hash():
    a = _stream()
    b = bs.Stream(indices=a.indices.copy(), n_bits=6, model_hash=HASH.upper(),
                  n_samples=a.n_samples)
    assert a == b and b.model_hash == HASH
    c = bs.Stream(indices=np.where(a.indices == 0, 1, 0), n_bits=6, model_hash=HASH,
                  n_samples=a.n_samples)
    assert a != c


def test_to_bytes_rejects_non_stream():
    with pytest.raises(ParameterError):
        bs.to_bytes(np.zeros(3))  # type: ignore[arg-type]


def test_header_layout_is_as_documented():
    s = _stream(n_frames=7, n_bits=6)
    data = bs.to_bytes(s)
    assert bs.HEADER_SIZE == 42
    assert len(data) == 42 + math.ceil(7 * 6 / 8) == bs.stream_size(7, 6)
    assert data[:4] == b"PACI" and data[4] == 1 and data[5] == 6
    assert struct.unpack_from("<H", data, 6) == (0,)
    assert data[8:16] == bytes.fromhex(HASH)
    assert struct.unpack_from("<IHIQ", data, 16) == (16000, 18, 7, s.n_samples)
    payload = data[42:]
    assert payload == oracle_pack(s.indices, 6)
    assert struct.unpack_from("<I", data, 34) == (zlib.crc32(payload),)
    assert struct.unpack_from("<I", data, 38) == (zlib.crc32(data[:38]),)


@settings(max_examples=100, deadline=None)
@given(n_bits=st.integers(1, 16), n_frames=st.integers(0, 300), hop=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), short=st.integers(0, 39), upper=st.booleans())
def test_stream_round_trip_and_exact_size(n_bits, n_frames, hop, seed, short, upper):
    s = _stream(n_frames=n_frames, n_bits=n_bits, seed=seed, hop=hop, short=short % hop)
    data = bs.to_bytes(s)
    assert len(data) == bs.HEADER_SIZE + math.ceil(n_frames * n_bits / 8)
    expected = HASH.upper() if upper else HASH
    back = bs.from_bytes(data, expected_model_hash=expected)
    assert back == s
    assert bs.to_bytes(back) == data


def test_acceptance_size_window_for_six_bits():
    for frames in (0, 1, 888, 889, 10_000):
        size = len(bs.to_bytes(_stream(n_frames=frames)))
        assert math.ceil(frames * 6 / 8) <= size <= math.ceil(frames * 6 / 8) + 256


def test_measured_bitrate_and_entropy_rates():
    s = _stream(n_frames=8889)
    nbytes = len(bs.to_bytes(s))
    rate = bs.measured_bitrate_bps(nbytes, s.n_frames, s.frame_rate)
    assert rate == pytest.approx(8 * nbytes / (8889 / (16000 / 18)))
    assert s.nominal_bitrate_bps < rate < s.nominal_bitrate_bps + 8 * 42 + 1  # header < 1 s worth
    with pytest.raises(ParameterError):
        bs.measured_bitrate_bps(nbytes, 0, s.frame_rate)
    with pytest.raises(ParameterError):
        bs.measured_bitrate_bps(nbytes, 10, 0.0)
    with pytest.raises(ParameterError):
        bs.measured_bitrate_bps(nbytes, 10, float("nan"))


# ---------------------------------------------------------------- entropy

def test_index_entropy_known_histograms():
    assert bs.index_entropy(np.zeros(0, dtype=np.int64), 64) == 0.0
    assert bs.index_entropy(np.full(100, 7), 64) == 0.0
    assert bs.index_entropy(np.arange(64).repeat(3), 64) == pytest.approx(6.0)
    assert bs.index_entropy(np.array([0, 0, 1, 2]), 4) == pytest.approx(1.5)
    assert bs.index_entropy(np.array([0, 1]), 64) == pytest.approx(1.0)
    # against the obvious formula on a random histogram
    idx = np.random.default_rng(3).integers(0, 10, 500) ** 2 % 37
    p = np.array([np.mean(idx == k) for k in range(37)])
    p = p[p > 0]
    assert bs.index_entropy(idx, 37) == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)
    with pytest.raises(ParameterError):
        bs.index_entropy(np.array([64]), 64)
    with pytest.raises(ParameterError):
        bs.index_entropy(np.array([-1]), 64)
    with pytest.raises(ParameterError):
        bs.index_entropy(np.array([0.5]), 64)


# ---------------------------------------------------------------- validation

def _one_line_bitstream_error(data: bytes, **kw) -> str:
    with pytest.raises(BitstreamError) as info:
        bs.from_bytes(data, source="x.paci", **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("x.paci: "), msg
    return msg


def test_truncated_at_every_length_is_a_bitstream_error():
    for n_frames, n_bits in ((25, 6), (0, 6), (3, 16), (9, 1)):
        data = bs.to_bytes(_stream(n_frames=n_frames, n_bits=n_bits))
        for cut in range(len(data)):
            _one_line_bitstream_error(data[:cut])
    data = bs.to_bytes(_stream(n_frames=100))
    assert "truncated: 40 bytes" in _one_line_bitstream_error(data[:40])
    assert "truncated: 10 bytes of payload, expected 75" in _one_line_bitstream_error(data[:52])


def test_every_single_byte_change_is_detected():
    data = bs.to_bytes(_stream(n_frames=25, n_bits=6))
    for pos in range(len(data)):
        for delta in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[pos] ^= delta
            _one_line_bitstream_error(bytes(bad))


def test_specific_messages():
    s = _stream(n_frames=25)
    data = bs.to_bytes(s)
    assert "empty file" in _one_line_bitstream_error(b"")
    assert "not a pa-ci stream" in _one_line_bitstream_error(b"garbage\n")
    assert "not a pa-ci stream" in _one_line_bitstream_error(b"RIFF" + data[4:])
    assert "trailing bytes" in _one_line_bitstream_error(data + b"\x00")
    bad = bytearray(data)
    bad[-3] ^= 0x10
    assert "corrupt payload" in _one_line_bitstream_error(bytes(bad))
    bad = bytearray(data)
    bad[20] ^= 0x01
    assert "corrupt header" in _one_line_bitstream_error(bytes(bad))
    msg = _one_line_bitstream_error(data, expected_model_hash=OTHER)
    assert f"coded with model {HASH}, this model is {OTHER}" in msg and "--model" in msg


def _forge(s: bs.Stream, *, version: int = 1, n_bits: int | None = None, flags: int = 0,
           n_frames: int | None = None, hop: int | None = None, payload: bytes | None = None,
           sample_rate: int = 16000) -> bytes:
    """A header with valid CRCs around deliberately wrong field values."""
    payload = bs.pack_indices(s.indices, s.n_bits) if payload is None else payload
    head = struct.pack("<4sBBH8sIHIQI", b"PACI", version, s.n_bits if n_bits is None else n_bits,
                       flags, bytes.fromhex(s.model_hash), sample_rate,
                       s.hop if hop is None else hop, s.n_frames if n_frames is None else n_frames,
                       s.n_samples, zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def test_well_checksummed_but_invalid_headers():
    s = _stream(n_frames=25)
    assert bs.from_bytes(_forge(s)) == s  # the forger itself is right
    assert "version 2 is not supported" in _one_line_bitstream_error(_forge(s, version=2))
    assert "n_bits = 0" in _one_line_bitstream_error(_forge(s, n_bits=0))
    assert "n_bits = 17" in _one_line_bitstream_error(_forge(s, n_bits=17))
    assert "flags" in _one_line_bitstream_error(_forge(s, flags=1))
    assert "hop 0" in _one_line_bitstream_error(_forge(s, hop=0))
    assert "sample_rate 0" in _one_line_bitstream_error(_forge(s, sample_rate=0))
    msg = _one_line_bitstream_error(_forge(s, n_frames=24))
    assert "24 frames for 445 samples" in msg and "ceil" in msg
    # padding bits: 25 * 6 = 150 bits -> 2 padding bits in the last byte
    payload = bytearray(bs.pack_indices(s.indices, 6))
    payload[-1] |= 0x01
    assert "padding" in _one_line_bitstream_error(_forge(s, payload=bytes(payload)))
    # n_bits claimed larger than written: payload too short for it
    assert "truncated" in _one_line_bitstream_error(_forge(s, n_bits=8))


def test_bitstream_error_is_a_pa_ci_error():
    assert issubclass(BitstreamError, PaCiError)


def test_bad_expected_hash_is_a_parameter_error():
    with pytest.raises(ParameterError):
        bs.from_bytes(bs.to_bytes(_stream()), expected_model_hash="nothex")


# ---------------------------------------------------------------- files

def test_write_read_round_trip(tmp_path):
    s = _stream(n_frames=1000)
    out = bs.write_stream(tmp_path / "sub" / "a.paci", s)
    assert out == tmp_path / "sub" / "a.paci"
    assert out.stat().st_size == bs.stream_size(1000, 6)
    assert bs.read_stream(out, expected_model_hash=HASH) == s
    assert os.listdir(tmp_path / "sub") == ["a.paci"]


def test_read_errors_name_the_file(tmp_path):
    for target, text in ((tmp_path / "missing.paci", "no such file"), (tmp_path, "is a folder")):
        with pytest.raises(BitstreamError, match=text) as info:
            bs.read_stream(target)
        assert str(info.value).startswith(str(target)) and "\n" not in str(info.value)
    junk = tmp_path / "junk.paci"
    junk.write_bytes(b"garbage\n")
    with pytest.raises(BitstreamError, match=f"^{junk}: not a pa-ci stream"):
        bs.read_stream(junk)
    trunc = tmp_path / "trunc.paci"
    trunc.write_bytes(bs.to_bytes(_stream(n_frames=100))[:40])
    with pytest.raises(BitstreamError, match="truncated"):
        bs.read_stream(trunc)
    other = bs.write_stream(tmp_path / "other.paci", _stream(model_hash=OTHER))
    with pytest.raises(BitstreamError, match="decode with the model that encoded it"):
        bs.read_stream(other, expected_model_hash=HASH)


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    s = _stream()
    # the folder is a file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BitstreamError, match="cannot write") as info:
        bs.write_stream(blocker / "a.paci", s)
    assert "\n" not in str(info.value)
    # the target is a folder: the rename fails, the temporary file is removed
    (tmp_path / "dir.paci").mkdir()
    with pytest.raises(BitstreamError, match="cannot write"):
        bs.write_stream(tmp_path / "dir.paci", s)
    assert sorted(os.listdir(tmp_path)) == ["dir.paci", "file"]
    # a failure half-way through the write keeps the old file and leaves no temporary
    target = bs.write_stream(tmp_path / "keep.paci", s)
    old = target.read_bytes()

    def broken(self, data):
        with open(self, "wb") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", broken)
    with pytest.raises(BitstreamError, match="No space left"):
        bs.write_stream(target, _stream(seed=5))
    monkeypatch.undo()
    assert target.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["dir.paci", "file", "keep.paci"]


def test_invalid_stream_is_not_written(tmp_path):
    with pytest.raises(ParameterError):
        bs.write_stream(tmp_path / "a.paci", "not a stream")  # type: ignore[arg-type]
    assert not (tmp_path / "a.paci").exists()
