"""pa_ci.codec.export: round trips, the documented byte layout, quantisation bounds, decoding, sizes,
and every way a file can be bad."""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_ci.codec import export as ex
from pa_ci.codec import frae
from pa_ci.errors import ModelFileError, PaCiError, ParameterError
from pa_ci.codec.frae import FraeConfig, frae_layout
from pa_ci.codec.model_file import load_model
from pa_ci.codec.stream import Decoder, Encoder

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pa_ci" / "bundled" / "models" / "frae-default.npz"
ARCTIC = ROOT / "pa_ci" / "bundled" / "speech" / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav"
HASH = "0123456789abcdef"
DEFAULT = FraeConfig()
SMALL = FraeConfig(n_channels=6, enc_hidden=3, dec_hidden=3, latent_dim=2, codebook_size=4,
                   output_maxima=2)
#: Tensors each part carries (written out here, not taken from the module).
PART_NAMES = {
    "decoder": ["codebook", "dec.gru.W_ih", "dec.gru.W_hh", "dec.gru.b_ih", "dec.gru.b_hh",
                "dec.out.W", "dec.out.b"],
    "encoder": ["enc.gru.W_ih", "enc.gru.W_hh", "enc.gru.b_ih", "enc.gru.b_hh", "enc.latent.W",
                "enc.latent.b", "codebook", "dec.gru.W_ih", "dec.gru.W_hh", "dec.gru.b_ih",
                "dec.gru.b_hh"],
    "whole": list(frae_layout(DEFAULT).names),
}
VB = {"float32": 4, "float16": 2, "int8": 1}


def f32(theta: np.ndarray) -> np.ndarray:
    return theta.astype(np.float32).astype(np.float64)


def pruned(config: FraeConfig = DEFAULT, seed: int = 0, frac: float = 0.6,
           parts: tuple[str, ...] = ("decoder",)) -> np.ndarray:
    """init_params with a random ``frac`` of the weights of ``parts`` set to 0."""
    theta = frae.init_params(config, seed)
    w = np.flatnonzero(frae_layout(config).mask(parts=parts, kinds="weight"))
    rng = np.random.default_rng(seed + 1)
    theta[rng.choice(w, int(round(frac * w.size)), replace=False)] = 0.0
    return theta


def magnitude_pruned(theta: np.ndarray, config: FraeConfig, frac: float) -> np.ndarray:
    """The ``frac`` smallest-|w| decoder weights set to 0."""
    th = theta.copy()
    w = np.flatnonzero(frae_layout(config).mask(parts="decoder", kinds="weight"))
    order = np.argsort(np.abs(th[w]), kind="stable")
    th[w[order[:int(round(frac * w.size))]]] = 0.0
    return th


def expected_mask(config: FraeConfig, part: str) -> np.ndarray:
    layout = frae_layout(config)
    return layout.mask(names=PART_NAMES[part])


def reseal(data: bytes, head_edits: dict[int, bytes] | None = None,
           payload: bytes | None = None) -> bytes:
    """Patch header bytes / replace the payload, then recompute payload size and both CRCs."""
    head = bytearray(data[:48])
    body = data[52:] if payload is None else payload
    for off, b in (head_edits or {}).items():
        head[off:off + len(b)] = b
    head[40:44] = struct.pack("<I", len(body))
    head[44:48] = struct.pack("<I", zlib.crc32(body))
    return bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + body


# --------------------------------------------------------------------------- round trips
def test_float32_round_trip_of_a_pruned_decoder_is_exact():
    theta = pruned()
    layout = frae_layout(DEFAULT)
    data = ex.export_bytes(theta, DEFAULT, model_hash=HASH)
    got = ex.from_bytes(data, "mem")
    mask = expected_mask(DEFAULT, "decoder")
    assert got.config == DEFAULT and got.part == "decoder" and got.values == "float32"
    assert got.model_hash == HASH
    assert got.theta.dtype == np.float64 and got.theta.shape == (layout.size,)
    np.testing.assert_array_equal(got.present, mask)
    np.testing.assert_array_equal(got.theta[mask], f32(theta)[mask])  # bit-exact float32 values
    assert not got.theta[~mask].any()
    w = layout.mask(parts="decoder", kinds="weight")
    zeros = w & (theta == 0)
    assert 0.55 < zeros.sum() / w.sum() < 0.65
    assert np.all(got.theta[zeros] == 0) and np.all(got.theta[w & ~zeros] != 0)
    assert set(got.encodings) == {"dec.gru.W_ih", "dec.gru.W_hh", "dec.out.W"}


@pytest.mark.parametrize("part", ["decoder", "encoder", "whole"])
def test_each_part_carries_its_tensors_and_nothing_else(part):
    theta = pruned(parts=("encoder", "decoder"), seed=3)
    got = ex.from_bytes(ex.export_bytes(theta, DEFAULT, part=part))
    mask = expected_mask(DEFAULT, part)
    np.testing.assert_array_equal(got.present, mask)
    np.testing.assert_array_equal(ex.part_mask(DEFAULT, part), mask)
    np.testing.assert_array_equal(got.theta, np.where(mask, f32(theta), 0.0))
    assert got.model_hash == ""  # unset
    head = struct.unpack_from("<H", ex.export_bytes(theta, DEFAULT, part=part), 22)[0]
    assert head == len(PART_NAMES[part])


def test_deterministic_bytes_and_config_fields_round_trip():
    cfg = FraeConfig(n_channels=9, enc_hidden=5, dec_hidden=4, latent_dim=3, codebook_size=300,
                     output_maxima=0, frame_rate=1000.5)
    theta = pruned(cfg, seed=5, frac=0.3)
    a = ex.export_bytes(theta, cfg, part="whole", values="int8", model_hash=HASH.upper())
    assert a == ex.export_bytes(theta.copy(), cfg, part="whole", values="int8",
                                model_hash=HASH.upper())
    got = ex.from_bytes(a)
    assert got.config == cfg and got.model_hash == HASH


def test_header_and_records_follow_the_documented_bytes():
    """A hand-built file: every header offset and every record as the docstring says."""
    cfg = FraeConfig(n_channels=6, enc_hidden=3, dec_hidden=8, latent_dim=4, codebook_size=4,
                     output_maxima=2)
    layout = frae_layout(cfg)
    theta = np.zeros(layout.size)
    cb = np.arange(1, 17, dtype=float) / 16                  # codebook (4, 4), dense
    theta[layout["codebook"].slice] = cb
    wih = np.zeros(96)
    wih[[0, 9]] = [0.5, -2.0]                                # dec.gru.W_ih (24, 4): 2 of 96
    theta[layout["dec.gru.W_ih"].slice] = wih
    whh = np.full(192, 0.25)                                 # dec.gru.W_hh (24, 8): full
    theta[layout["dec.gru.W_hh"].slice] = whh
    theta[layout["dec.gru.b_ih"].slice] = 1.0
    theta[layout["dec.gru.b_hh"].slice] = -1.0
    wout = np.zeros(48)
    wout[[1, 2, 3, 4, 8, 9, 16]] = 3.0                       # dec.out.W (6, 8): 7 of 48
    theta[layout["dec.out.W"].slice] = wout
    theta[layout["dec.out.b"].slice] = 0.125
    theta[layout["enc.gru.W_ih"].slice] = 7.0                # not in the decoder part
    data = ex.export_bytes(theta, cfg, model_hash=HASH)

    f = lambda *v: np.asarray(v, "<f4").tobytes()  # noqa: E731
    payload = (f(*cb)
               + bytes([2]) + struct.pack("<HHH", 2, 0, 9) + f(0.5, -2.0)   # list 14 < bitmap 20
               + bytes([0]) + f(*whh)                                      # dense 768 < 24 + 768
               + f(*[1.0] * 24) + f(*[-1.0] * 24)
               + bytes([1, 0b00011110, 0b00000011, 0b00000001, 0, 0, 0]) + f(*[3.0] * 7)  # 34 < 44
               + f(*[0.125] * 6))
    assert data[52:] == payload
    assert data[:4] == b"PACX" and data[4:8] == bytes([1, 0, 0, 1])
    assert struct.unpack_from("<HHHHIHHd", data, 8) == (6, 3, 8, 4, 4, 2, 7, cfg.frame_rate)
    assert data[32:40] == bytes.fromhex(HASH)
    assert struct.unpack_from("<III", data, 40) == (len(payload), zlib.crc32(payload),
                                                   zlib.crc32(data[:48]))
    assert len(data) == ex.HEADER_SIZE + len(payload) == 52 + len(payload)
    got = ex.from_bytes(data)
    assert got.encodings == {"dec.gru.W_ih": "list", "dec.gru.W_hh": "dense",
                             "dec.out.W": "bitmap"}
    np.testing.assert_array_equal(got.theta, np.where(got.present, theta, 0.0))

    q = ex.export_bytes(theta, cfg, values="int8")        # int8: scale first, then the record
    s = np.float32(1.0 / 127)
    assert q[52:56] == struct.pack("<f", s)
    assert q[56:72] == np.clip(np.rint(cb / np.float64(s)), -127, 127).astype("i1").tobytes()
    assert q[72:76] == struct.pack("<f", np.float32(2.0 / 127))
    assert q[76:83] == bytes([2]) + struct.pack("<HHH", 2, 0, 9) and q[83:85] == bytes([32, 129])


# --------------------------------------------------------------------------- sparsity property
def _record_size(v: np.ndarray, vb: int) -> int:
    n, nnz = v.size, int(np.count_nonzero(v))
    return 1 + min(n * vb, math.ceil(n / 8) + nnz * vb, 2 + nnz * (2 + vb))


@settings(max_examples=120, deadline=None)
@given(data=st.data(), dims=st.tuples(st.integers(1, 12), st.integers(1, 6), st.integers(1, 6),
                                      st.integers(1, 3), st.integers(2, 9)),
       values=st.sampled_from(["float32", "float16", "int8"]),
       part=st.sampled_from(["decoder", "encoder", "whole"]))
def test_sparsity_patterns_survive(data, dims, values, part):
    C, He, Hd, D, K = dims
    cfg = FraeConfig(n_channels=C, enc_hidden=He, dec_hidden=Hd, latent_dim=D, codebook_size=K,
                     output_maxima=min(C, 2))
    layout = frae_layout(cfg)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    # magnitudes in [0.5, 2]: no weight quantises to 0, not even in int8 (|w| >= max/4 > s/2)
    theta = rng.uniform(0.5, 2.0, layout.size) * rng.choice([-1.0, 1.0], layout.size)
    for spec in layout:
        if spec.kind == "weight":
            mode = data.draw(st.sampled_from(["none", "all", "some"]), label=spec.name)
            keep = {"none": 1.0, "all": 0.0, "some": rng.uniform()}[mode]
            theta[spec.slice] *= rng.uniform(size=spec.size) < keep
    blob = ex.export_bytes(theta, cfg, part=part, values=values)
    got = ex.from_bytes(blob)
    mask = expected_mask(cfg, part)
    np.testing.assert_array_equal(got.present, mask)
    np.testing.assert_array_equal(got.theta != 0, (theta != 0) & mask)  # positions and nnz
    if values == "float32":
        np.testing.assert_array_equal(got.theta[mask], f32(theta)[mask])
    # size: header + per tensor (int8 scale) + the smallest weight encoding / dense values
    vb = VB[values]
    size = 52
    for spec in layout:
        if spec.name in PART_NAMES[part]:
            size += 4 * (values == "int8")
            size += _record_size(theta[spec.slice], vb) if spec.kind == "weight" \
                else spec.size * vb
    assert len(blob) == size


# --------------------------------------------------------------------------- quantisation bounds
def _bound(w: np.ndarray, values: str, scale: float = 0.0) -> np.ndarray:
    a = np.abs(w)
    if values == "float32":
        return np.maximum(a * 2.0**-24, 2.0**-150)
    if values == "float16":
        return np.maximum(a * 2.0**-11, 2.0**-25)
    return np.full_like(a, max(scale / 2, 127 * 2.0**-150))


@pytest.mark.parametrize("values", ["float32", "float16", "int8"])
def test_value_errors_within_the_documented_bound(values, tmp_path):
    cfg = DEFAULT
    layout = frae_layout(cfg)
    theta = pruned(cfg, seed=7, parts=("encoder", "decoder"))
    rng = np.random.default_rng(8)
    theta *= np.exp(rng.uniform(-12, 3, theta.size))  # magnitudes from ~1e-6 to ~10
    info = ex.write_export(tmp_path / "m.pacx", theta, cfg, part="whole", values=values)
    got = ex.read_export(tmp_path / "m.pacx")
    worst = 0.0
    for spec in layout:
        w, r = theta[spec.slice], got.theta[spec.slice]
        s = float(np.float32(np.max(np.abs(w)) / 127))
        err = np.abs(w - r)
        assert np.all(err <= _bound(w, values, s) * (1 + 1e-12)), spec.name
        worst = max(worst, float(err.max()))
        if values == "int8" and spec.size >= 40:
            assert err.max() > s / 4  # the bound is tight (the test could fail)
    assert info.max_abs_error == pytest.approx(worst, rel=0, abs=0)
    wts = layout.mask(kinds="weight")
    flushed = int(np.sum((theta != 0) & (got.theta == 0) & wts))
    assert info.flushed_weights == flushed
    tiny = int(np.sum((theta != 0) & (np.abs(theta) <= 2.0**-25) & wts))
    assert flushed == {"float32": 0, "float16": tiny, "int8": flushed}[values]
    assert (flushed > 0) == (values == "int8") or values == "float16"
    assert not np.any((theta == 0) & (got.theta != 0))


def test_float16_overflow_and_nonfinite_theta_are_parameter_errors():
    theta = frae.init_params(DEFAULT, 0)
    big = theta.copy()
    big[frae_layout(DEFAULT)["dec.out.b"].offset] = 70000.0
    with pytest.raises(ParameterError, match="dec.out.b.*float16"):
        ex.export_bytes(big, DEFAULT, values="float16")
    ex.export_bytes(big, DEFAULT, values="float32")  # fits in float32
    nan = theta.copy()
    nan[5] = np.nan
    with pytest.raises(ParameterError, match="non-finite"):
        ex.export_bytes(nan, DEFAULT)


def test_all_zero_tensor_and_tiny_weights_in_int8():
    theta = frae.init_params(SMALL, 1)
    layout = frae_layout(SMALL)
    theta[layout["dec.out.W"].slice] = 0.0
    theta[layout["dec.gru.W_hh"].offset] = 1e-9  # < s/2 of its tensor: flushed to 0
    got = ex.from_bytes(ex.export_bytes(theta, SMALL, values="int8"))
    assert not got.theta[layout["dec.out.W"].slice].any()
    assert got.theta[layout["dec.gru.W_hh"].offset] == 0.0
    assert got.encodings["dec.out.W"] == "list"


# --------------------------------------------------------------------------- decoding
@pytest.fixture(scope="module")
def shipped():
    from pa_ci.chain.ace import ace
    from pa_ci.chain.files import load_audio_at
    model = load_model(SHIPPED)
    cfg = FraeConfig.from_dict(model.config)
    pattern = ace(load_audio_at(ARCTIC, 16000), 16000)
    return model, cfg, pattern


@pytest.mark.parametrize("frac", [0.0, 0.55])
def test_decoding_with_the_loaded_decoder(shipped, frac):
    model, cfg, pattern = shipped
    theta = magnitude_pruned(model.theta, cfg, frac)
    indices = frae.forward(theta, cfg, pattern).indices
    got = ex.from_bytes(ex.export_bytes(theta, cfg, model_hash=model.hash))
    assert got.model_hash == model.hash
    out = frae.decode(got.theta, cfg, indices)
    np.testing.assert_array_equal(out, frae.decode(f32(theta), cfg, indices))  # exactly
    ref = frae.decode(theta, cfg, indices)
    # measured 1.4e-6 (unpruned) and 8e-8 (55 %) on this item, same maxima everywhere
    np.testing.assert_array_equal(out != 0, ref != 0)
    assert np.max(np.abs(out - ref)) < 1e-5
    stream = Decoder(got.theta, cfg)  # the streaming decoder agrees too
    np.testing.assert_array_equal(np.stack([stream.step(i) for i in indices[:200]]), out[:200])


def test_encoder_part_is_enough_to_encode(shipped):
    model, cfg, pattern = shipped
    got = ex.from_bytes(ex.export_bytes(model.theta, cfg, part="encoder"))
    assert not got.theta[frae_layout(cfg).mask(names=["dec.out.W", "dec.out.b"])].any()
    idx = frae.forward(got.theta, cfg, pattern[:1500]).indices
    np.testing.assert_array_equal(idx, frae.forward(f32(model.theta), cfg, pattern[:1500]).indices)
    enc = Encoder(got.theta, cfg)
    assert [enc.step(x) for x in pattern[:100]] == list(idx[:100])


# --------------------------------------------------------------------------- sizes
def test_sizes_fit_the_budget_and_shrink_with_pruning(tmp_path):
    theta = frae.init_params(DEFAULT, 0)
    full = ex.write_export(tmp_path / "full.pacx", theta, DEFAULT)
    sparse = ex.write_export(tmp_path / "sparse.pacx", pruned(frac=0.6), DEFAULT)
    whole = ex.write_export(tmp_path / "whole.pacx", theta, DEFAULT, part="whole")
    assert full.n_bytes == (tmp_path / "full.pacx").stat().st_size
    assert whole.n_bytes < ex.MEMORY_BUDGET_BYTES / 2 and full.n_bytes < ex.MEMORY_BUDGET_BYTES / 5
    n_dec_w = 42 * 2 + 42 * 14 + 22 * 14
    n_dense = 64 * 2 + 42 + 42 + 22
    assert (full.n_weights, full.n_dense) == (n_dec_w, n_dense)
    assert full.nonzero_weights == n_dec_w and full.flushed_weights == 0
    assert full.dense_float32_bytes == 4 * (n_dec_w + n_dense)
    assert full.n_bytes == 52 + 3 + full.dense_float32_bytes  # unpruned: dense, 3 encoding bytes
    assert sparse.nonzero_weights == n_dec_w - round(0.6 * n_dec_w)
    assert sparse.n_bytes < 0.7 * full.n_bytes
    assert full.to_dict()["path"] == str(tmp_path / "full.pacx")
    assert full.to_dict()["n_bytes"] == full.n_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.pacx", "sparse.pacx",
                                                          "whole.pacx"]  # no temporary files


@pytest.mark.parametrize("values", ["float16", "int8"])
def test_smaller_value_types_give_smaller_files(values):
    theta = pruned()
    assert len(ex.export_bytes(theta, DEFAULT, values=values)) < \
        len(ex.export_bytes(theta, DEFAULT)) * (0.6 if values == "float16" else 0.35)


# --------------------------------------------------------------------------- bad files
@pytest.fixture(scope="module")
def small_file() -> bytes:
    return ex.export_bytes(pruned(SMALL, seed=2, frac=0.5), SMALL, values="int8", model_hash=HASH)


def _one_line_error(data: bytes, name: str = "x.pacx") -> str:
    with pytest.raises(ModelFileError) as err:
        ex.from_bytes(data, name)
    msg = str(err.value)
    assert msg.startswith(f"{name}: ") and "\n" not in msg
    return msg


def test_every_single_byte_change_is_detected(small_file):
    for i in range(len(small_file)):
        for flip in (0x01, 0x80):
            bad = bytearray(small_file)
            bad[i] ^= flip
            _one_line_error(bytes(bad))


def test_every_truncation_and_trailing_bytes_are_detected(small_file):
    for n in range(len(small_file)):
        msg = _one_line_error(small_file[:n])
        assert ("truncated" in msg) or n == 0
    assert "trailing" in _one_line_error(small_file + b"\0")
    assert "empty" in _one_line_error(b"")


@pytest.mark.parametrize("data, expected", [
    (b"PACI" + bytes(60), "not a pa-ci export"),
    (b"\x89PNG" + bytes(10), "not a pa-ci export"),
    (b"PAC", "truncated"),
])
def test_wrong_magic(data, expected):
    assert expected in _one_line_error(data)


@pytest.mark.parametrize("edit, expected", [
    ({4: b"\x03"}, "version 3"),
    ({5: b"\x03"}, "value type code 3"),
    ({6: b"\x07"}, "part code 7"),
    ({7: b"\x02"}, "flags"),
    ({8: struct.pack("<H", 0)}, "no valid FRAE config"),
    ({20: struct.pack("<H", 9)}, "no valid FRAE config"),   # output_maxima > n_channels
    ({22: struct.pack("<H", 6)}, "6 tensors"),
])
def test_header_fields_are_checked_behind_valid_crcs(small_file, edit, expected):
    assert expected in _one_line_error(reseal(small_file, edit))


def test_payload_records_are_checked_behind_valid_crcs(small_file):
    got = ex.from_bytes(small_file)
    assert got.encodings["dec.gru.W_ih"] in ("bitmap", "list")
    body = small_file[52:]
    # codebook: scale + 8 values; then dec.gru.W_ih: scale + encoding byte at offset 16
    assert "encoding 5" in _one_line_error(reseal(small_file, payload=body[:16] + b"\x05"
                                                   + body[17:]))
    assert "left after the last tensor" in _one_line_error(reseal(small_file, payload=body + b"1"))
    assert "payload ends inside" in _one_line_error(reseal(small_file, payload=body[:-1]))
    assert "-128" in _one_line_error(reseal(small_file, payload=b"\0\0\0\0\x80" + body[5:]))
    nan_scale = struct.pack("<f", float("nan"))
    assert "scale" in _one_line_error(reseal(small_file, payload=nan_scale + body[4:]))


def _bitmap_file(values: list[float]) -> tuple[bytes, int]:
    """SMALL decoder whose dec.out.W (18 entries) is a bitmap; returns (file, its file offset)."""
    layout = frae_layout(SMALL)
    theta = frae.init_params(SMALL, 0)
    w = np.zeros(18)
    w[:len(values)] = values
    theta[layout["dec.out.W"].slice] = w
    data = ex.export_bytes(theta, SMALL)
    off = 4 * 8 + (1 + 18 * 4) + (1 + 27 * 4) + 4 * 18  # codebook, W_ih, W_hh, biases
    assert ex.from_bytes(data).encodings["dec.out.W"] == "bitmap" and data[52 + off] == 1
    return data, 52 + off


def test_bitmap_padding_and_zero_values_are_rejected():
    data, at = _bitmap_file([1.0, 2.0, 3.0, 4.0, 5.0])
    bad = bytearray(data)
    bad[at + 3] |= 0x80  # bit 23 of an 18-entry tensor
    assert "padding" in _one_line_error(reseal(bytes(bad)))
    bad = bytearray(data)
    bad[at + 4:at + 8] = struct.pack("<f", 0.0)  # the first stored value
    assert "stores a 0" in _one_line_error(reseal(bytes(bad)))


def test_index_list_order_is_checked():
    layout = frae_layout(DEFAULT)
    theta = frae.init_params(DEFAULT, 0)
    w = np.zeros(588)
    w[[3, 7]] = 1.0
    theta[layout["dec.gru.W_hh"].slice] = w                  # (42, 14): list 14 < bitmap 82
    data = ex.export_bytes(theta, DEFAULT)
    at = 52 + 4 * 128 + (1 + 84 * 4)                         # codebook, dense dec.gru.W_ih
    assert data[at:at + 7] == bytes([2]) + struct.pack("<HHH", 2, 3, 7)
    for idx in ((7, 3), (3, 3), (3, 588)):
        bad = data[:at + 3] + struct.pack("<HH", *idx) + data[at + 7:]
        assert "bad indices" in _one_line_error(reseal(bad))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match=r"nope\.pacx: no such file"):
        ex.read_export(tmp_path / "nope.pacx")
    with pytest.raises(ModelFileError, match="is a folder"):
        ex.read_export(tmp_path)


def test_the_loader_needs_only_the_file(tmp_path, monkeypatch):
    model = load_model(SHIPPED)
    cfg = FraeConfig.from_dict(model.config)
    info = ex.write_export(tmp_path / "d.pacx", model.theta, cfg, model_hash=model.hash)
    assert info.path == tmp_path / "d.pacx"
    import pa_ci.codec.model_file

    def forbidden(*a, **k):
        raise AssertionError("the loader must not open a model file")
    monkeypatch.setattr(pa_ci.codec.model_file, "load_model", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    got = ex.read_export(tmp_path / "d.pacx")
    assert got.config == cfg and got.model_hash == model.hash
    np.testing.assert_array_equal(frae.decode(got.theta, cfg, np.arange(64)),
                                  frae.decode(f32(model.theta), cfg, np.arange(64)))


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("kw, expected", [
    ({"part": "receiver"}, "part 'receiver'; expected one of decoder, encoder, whole"),
    ({"values": "int4"}, "value type 'int4'; expected one of float32, float16, int8"),
    ({"model_hash": "xyz"}, "model_hash"),
    ({"model_hash": "0123456789abcdeg"}, "model_hash"),
])
def test_bad_arguments(kw, expected):
    with pytest.raises(ParameterError, match=expected.replace("(", r"\(")):
        ex.export_bytes(frae.init_params(DEFAULT, 0), DEFAULT, **kw)


def test_bad_theta_and_config():
    with pytest.raises(ParameterError, match="shape"):
        ex.export_bytes(np.zeros(10), DEFAULT)
    with pytest.raises(ParameterError, match="FraeConfig"):
        ex.export_bytes(frae.init_params(DEFAULT, 0), DEFAULT.to_dict())
    with pytest.raises(ParameterError, match="expected bytes"):
        ex.from_bytes("PACX")
    assert issubclass(ModelFileError, PaCiError)


def test_write_failure_is_a_model_file_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelFileError, match="cannot write the export"):
        ex.write_export(blocker / "sub" / "d.pacx", frae.init_params(DEFAULT, 0), DEFAULT)


# --------------------------------------------------------------------------- per-row value types
@pytest.mark.parametrize("values, qmax", [("int8-row", 127), ("int16-row", 32767)])
def test_row_types_scale_each_weight_row_and_follow_the_documented_bytes(values, qmax):
    theta = pruned(SMALL, seed=4, frac=0.3)
    layout = frae_layout(SMALL)
    data = ex.export_bytes(theta, SMALL, values=values, model_hash=HASH)
    assert data[4] == 2 and data[5] == ex.VALUE_TYPES.index(values)   # version 2
    got = ex.from_bytes(data)
    assert got.values == values and got.model_hash == HASH
    vb = 1 if values == "int8-row" else 2
    size = 52
    for spec in layout:
        if spec.name not in PART_NAMES["decoder"]:
            continue
        w = theta[spec.slice]
        r = got.theta[spec.slice]
        if spec.kind == "weight":
            rows = w.reshape(spec.shape)
            s = np.abs(rows).max(axis=1) / qmax
            s16 = s.astype(np.float16).astype(np.float64)
            s16 = np.where(s16 < s, np.nextafter(s16.astype(np.float16), np.float16(np.inf))
                           .astype(np.float64), s16)
            err = np.abs(rows - r.reshape(spec.shape))
            assert np.all(err <= s16[:, None] / 2 * (1 + 1e-12)), spec.name
            size += 2 * spec.shape[0] + _record_size(np.where(np.abs(w) < np.repeat(s16, spec.shape[1]) / 2,
                                                              0, w), vb)
        else:
            s = float(np.float32(np.abs(w).max() / qmax))
            assert np.all(np.abs(w - r) <= s / 2 * (1 + 1e-12)), spec.name
            size += 4 + spec.size * vb
    assert len(data) == size
    # the stored tensors the C generator uses equal what the reader returns
    st = ex.stored_tensors(theta, SMALL, values=values)
    for name, t in st.items():
        np.testing.assert_array_equal(t.dequantised.ravel(), got.theta[layout[name].slice])


def test_row_scales_beat_one_scale_per_tensor_on_uneven_rows():
    theta = frae.init_params(DEFAULT, 3)
    layout = frae_layout(DEFAULT)
    w = theta[layout["dec.gru.W_hh"].slice].reshape(42, 14)
    w[:14] *= 20.0                                  # one gate block 20x larger
    theta[layout["dec.gru.W_hh"].slice] = w.ravel()
    err = {}
    for v in ("int8", "int8-row"):
        got = ex.from_bytes(ex.export_bytes(theta, DEFAULT, values=v))
        err[v] = np.abs(got.theta - theta)[layout["dec.gru.W_hh"].slice].reshape(42, 14)[14:].max()
    assert err["int8-row"] < err["int8"] / 10


def test_old_types_stay_version_1_and_row_types_need_version_2(small_file):
    assert small_file[4] == 1                        # int8 per tensor: unchanged bytes
    row = ex.export_bytes(pruned(SMALL, seed=2), SMALL, values="int8-row")
    assert "value type code 3 for format version 1" in _one_line_error(reseal(row, {4: b"\x01"}))
    assert "version 9" in _one_line_error(reseal(row, {4: b"\x09"}))


def test_row_type_files_are_checked(tmp_path):
    theta = pruned(SMALL, seed=2, frac=0.5)
    layout = frae_layout(SMALL)
    theta[layout["dec.gru.W_hh"].slice][:3] = 0.0    # row 0 of W_hh (9, 3) is all zero
    data = ex.export_bytes(theta, SMALL, values="int16-row")
    got = ex.from_bytes(data)
    assert not got.theta[layout["dec.gru.W_hh"].slice][:3].any()
    for i in range(len(data)):                       # every byte still matters
        bad = bytearray(data)
        bad[i] ^= 0x40
        _one_line_error(bytes(bad))
    for n in range(0, len(data), 7):
        _one_line_error(data[:n])
    body = data[52:]
    at = 4 + 8 * 2 + 9 * 2                           # codebook record, dec.gru.W_ih's 9 row scales
    neg = body[:4 + 8 * 2] + struct.pack("<e", -1.0) + body[4 + 8 * 2 + 2:]
    assert "row scale" in _one_line_error(reseal(data, payload=neg))
    assert body[at] in (0, 1, 2)
    big = theta.copy()
    big[layout["dec.out.W"].offset] = 1e10
    with pytest.raises(ParameterError, match="row scale"):
        ex.export_bytes(big, SMALL, values="int8-row")
    info = ex.write_export(tmp_path / "r.pacx", theta, SMALL, values="int8-row")
    assert info.values == "int8-row" and info.n_bytes == len(ex.export_bytes(theta, SMALL,
                                                                             values="int8-row"))
