"""The flat parameter vector: layout, views, masks, hashing, model files and their errors."""
from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_ci.errors import ModelFileError, ParameterError
from pa_ci.codec.layout import KINDS, PARTS, Layout, TensorSpec
from pa_ci.codec.model_file import ModelFile, load_model, model_hash, save_model

SPEC = [("enc.W", (3, 4), "encoder", "weight"),
        ("enc.b", (3,), "encoder", "bias"),
        ("codebook", (5, 2), "codebook", "codebook"),
        ("dec.W", (2, 3), "decoder", "weight"),
        ("dec.b", (2,), "decoder", "bias")]


@pytest.fixture
def layout() -> Layout:
    return Layout(SPEC)


@pytest.fixture
def theta(layout) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(layout.size)


# --------------------------------------------------------------------------- layout
def test_layout_packs_in_order(layout):
    assert layout.size == 12 + 3 + 10 + 6 + 2 == 33 and len(layout) == 5
    assert layout.names == tuple(name for name, *_ in SPEC)
    offsets = [s.offset for s in layout]
    assert offsets == [0, 12, 15, 25, 31]
    spec = layout["codebook"]
    assert isinstance(spec, TensorSpec)
    assert (spec.shape, spec.part, spec.kind, spec.size, spec.stop) == ((5, 2), "codebook",
                                                                         "codebook", 10, 25)
    assert spec.slice == slice(15, 25)
    assert "dec.W" in layout and "nope" not in layout and 3 not in layout
    assert [s.name for s in layout] == list(layout.names)
    assert set(PARTS) == {"encoder", "decoder", "codebook"}
    assert set(KINDS) == {"weight", "bias", "codebook"}


def test_unknown_tensor_names_the_known_ones(layout):
    with pytest.raises(ParameterError, match=r"unknown tensor 'enc\.X'.*enc\.W, enc\.b, codebook"):
        layout["enc.X"]


@pytest.mark.parametrize("bad", [
    [("a", (2,), "encoder", "weight"), ("a", (3,), "decoder", "weight")],  # duplicate name
    [("a", (2,), "middle", "weight")],                                   # unknown part
    [("a", (2,), "encoder", "gain")],                                    # unknown kind
    [("a", (0, 3), "encoder", "weight")],                                # empty dimension
    [("a", (2.5,), "encoder", "weight")],                                # non-integer
    [("a", (), "encoder", "weight")],                                    # no dimensions
    [("", (2,), "encoder", "weight")],                                   # empty name
    [("a", (2,), "encoder")],                                            # short entry
])
def test_bad_layouts_are_parameter_errors(bad):
    with pytest.raises(ParameterError):
        Layout(bad)


def test_layout_is_immutable_and_comparable(layout):
    with pytest.raises(AttributeError):
        layout.size = 3
    assert layout == Layout(SPEC) and hash(layout) == hash(Layout(SPEC))
    assert layout != Layout(SPEC[:-1])
    assert layout != Layout([SPEC[1], SPEC[0]] + SPEC[2:])


def test_views_write_through(layout, theta):
    w = layout.view(theta, "dec.W")
    assert w.shape == (2, 3) and np.shares_memory(w, theta)
    np.testing.assert_array_equal(w.ravel(), theta[25:31])
    w[1, 2] = 123.0
    assert theta[30] == 123.0
    views = layout.views(theta)
    assert list(views) == list(layout.names)
    views["enc.b"][:] = -1.0
    np.testing.assert_array_equal(theta[12:15], -1.0)
    mask = np.ones(layout.size, dtype=bool)  # any dtype laid out like theta
    layout.view(mask, "codebook")[:] = False
    assert mask.sum() == layout.size - 10
    with pytest.raises(ParameterError, match=r"shape \(32,\); the layout needs \(33,\)"):
        layout.view(theta[:-1], "enc.W")
    with pytest.raises(ParameterError):
        layout.views(list(theta))


def test_masks_and_counts(layout):
    m = layout.mask(kinds="weight")
    assert m.dtype == bool and m.shape == (33,)
    np.testing.assert_array_equal(np.flatnonzero(m), list(range(0, 12)) + list(range(25, 31)))
    np.testing.assert_array_equal(layout.mask(parts="decoder", kinds="weight"),
                                  np.isin(np.arange(33), range(25, 31)))
    assert layout.mask().all()
    assert layout.mask(parts=("encoder", "decoder")).sum() == 23
    assert layout.mask(parts="codebook", kinds="weight").sum() == 0
    assert layout.mask(names=["enc.b", "dec.b"]).sum() == 5
    assert layout.count() == 33 and layout.count(kinds="weight") == 18
    assert layout.count(parts="decoder") == 8 and layout.count(kinds=("bias", "codebook")) == 15
    with pytest.raises(ParameterError, match="unknown part 'decoderr'"):
        layout.mask(parts="decoderr")
    with pytest.raises(ParameterError, match="unknown kind"):
        layout.count(kinds=["weights"])
    with pytest.raises(ParameterError, match="unknown tensor"):
        layout.mask(names="enc.X")


def test_flatten_round_trip_and_errors(layout, theta):
    arrays = {k: v.copy() for k, v in layout.views(theta).items()}
    back = layout.flatten(arrays)
    assert back.dtype == np.float64 and np.array_equal(back, theta)
    assert not np.shares_memory(back, theta)
    with pytest.raises(ParameterError, match="'dec.b' is missing"):
        layout.flatten({k: v for k, v in arrays.items() if k != "dec.b"})
    with pytest.raises(ParameterError, match="unknown tensors 'extra'"):
        layout.flatten({**arrays, "extra": np.zeros(1)})
    with pytest.raises(ParameterError, match=r"'enc.W' has shape \(4, 3\); expected \(3, 4\)"):
        layout.flatten({**arrays, "enc.W": np.zeros((4, 3))})
    z = layout.zeros()
    assert z.shape == (33,) and z.dtype == np.float64 and not z.any()


def test_dict_round_trip_and_describe(layout):
    d = layout.to_dict()
    text = json.dumps(d)
    assert Layout.from_dict(json.loads(text)) == layout
    rows = layout.describe()
    assert [r["name"] for r in rows] == list(layout.names)
    assert rows[3] == {"name": "dec.W", "shape": (2, 3), "part": "decoder", "kind": "weight",
                       "offset": 25, "size": 6}
    for bad in ({}, {"tensors": 3}, {"tensors": [{"name": "a"}]},
                {"tensors": [{"name": "a", "shape": 3, "part": "encoder", "kind": "weight"}]},
                {"tensors": [["a", [2], "encoder", "weight"]]}):
        with pytest.raises(ParameterError):
            Layout.from_dict(bad)


def test_model_hash(layout, theta):
    h = model_hash(theta, layout)
    assert len(h) == 16 and int(h, 16) >= 0
    canonical = json.dumps(layout.to_dict(), sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode() + theta.astype("<f8").tobytes()).hexdigest()[:16]
    assert h == expected
    assert model_hash(theta.copy(), Layout(SPEC)) == h
    changed = theta.copy()
    changed[7] = np.nextafter(changed[7], np.inf)  # one ulp of one weight
    assert model_hash(changed, layout) != h
    renamed = Layout([("enc.V", (3, 4), "encoder", "weight")] + SPEC[1:])
    assert model_hash(theta, renamed) != h


# --------------------------------------------------------------------------- model files
def _members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write_npz(path: Path, **members) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in members.items():
            zf.writestr(name + ".npy", _npy(arr))
    return path


def test_save_load_round_trip(tmp_path, layout, theta):
    mask = np.arange(layout.size) % 3 != 0
    config = {"n_channels": 22, "nested": {"a": [1, 2]}}
    meta = {"seed": np.int64(3), "vstoi": np.float64(0.71), "iterations": 1000}
    path = save_model(tmp_path / "run" / "model", theta, layout, config, meta, mask=mask)
    assert path == tmp_path / "run" / "model.npz" and path.is_file()
    m = load_model(path)
    assert isinstance(m, ModelFile)
    assert np.array_equal(m.theta, theta) and m.theta.dtype == np.float64
    assert m.layout == layout and m.config == config
    assert m.meta == {"seed": 3, "vstoi": 0.71, "iterations": 1000}
    assert np.array_equal(m.mask, mask) and m.mask.dtype == bool
    assert m.path == path and m.hash == model_hash(theta, layout)
    # a folder holding model.npz loads too, and expected_layout accepts the same layout
    m2 = load_model(tmp_path / "run", expected_layout=Layout(SPEC))
    assert np.array_equal(m2.theta, theta)
    # no mask, no meta
    p2 = save_model(tmp_path / "plain.npz", theta, layout, {})
    m3 = load_model(p2)
    assert m3.mask is None and m3.meta == {} and m3.config == {}
    # a standard npz: numpy reads it, the header is sorted-key JSON without any clock field
    members = _members(path)
    assert set(members) == {"header", "theta", "mask"}
    text = str(members["header"][()])
    header = json.loads(text)
    assert text == json.dumps(header, sort_keys=True, separators=(",", ":"))
    assert header["format"] == "pa-ci-model" and header["format_version"] == 1
    assert set(header) == {"format", "format_version", "pa_ci_version", "layout", "config",
                           "meta", "model_hash"}


def test_same_model_gives_identical_bytes(tmp_path, layout, theta, monkeypatch):
    a = save_model(tmp_path / "a.npz", theta, layout, {"k": 1}, {"seed": 1}, mask=theta > 0)
    later = time.time() + 3 * 86400  # a zip writer that stamps the clock would differ
    monkeypatch.setattr(time, "time", lambda: later)
    b = save_model(tmp_path / "b.npz", theta.copy(), Layout(SPEC), {"k": 1}, {"seed": 1},
                   mask=theta > 0)
    assert a.read_bytes() == b.read_bytes()


def test_save_replaces_atomically_and_refuses_bad_input(tmp_path, layout, theta):
    path = save_model(tmp_path / "m.npz", theta, layout, {})
    save_model(path, theta * 2, layout, {})
    assert np.array_equal(load_model(path).theta, theta * 2)
    bad_calls = [
        lambda: save_model(path, theta[:-1], layout, {}),
        lambda: save_model(path, np.where(theta > 0, np.nan, theta), layout, {}),
        lambda: save_model(path, theta, layout, {}, {"x": object()}),
        lambda: save_model(path, theta, layout, {}, mask=np.ones(layout.size)),
        lambda: save_model(path, theta, layout, {}, mask=np.ones(3, dtype=bool)),
        lambda: save_model(path, theta, layout, []),
    ]
    for call in bad_calls:
        with pytest.raises(ParameterError):
            call()
    assert np.array_equal(load_model(path).theta, theta * 2)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary left over


def _assert_one_line(exc_info, path, *fragments):
    msg = str(exc_info.value)
    assert "\n" not in msg and str(path) in msg, msg
    for f in fragments:
        assert f in msg, msg


def _valid_header(lay: Layout, **override):
    header = {"format": "pa-ci-model", "format_version": 1, "pa_ci_version": "0",
              "layout": lay.to_dict(), "config": {}, "meta": {}}
    header.update(override)
    return np.array(json.dumps(header))


def test_every_bad_file_is_one_model_file_error(tmp_path, layout, theta):
    good = save_model(tmp_path / "good.npz", theta, layout, {"a": 1})
    raw = good.read_bytes()
    cases: list[tuple[Path, tuple[str, ...]]] = []

    def case(name, fragments=()):
        p = tmp_path / name
        cases.append((p, fragments))
        return p

    case("missing.npz", ("no such model file",))
    (case("emptydir", ("no model.npz",))).mkdir()
    case("text.npz", ("not a pa-ci model file",)).write_text("hello")
    case("empty.npz", ("not a pa-ci model file",)).write_bytes(b"")
    with open(case("array.npz", ("not a pa-ci model file",)), "wb") as f:
        np.save(f, theta)  # a .npy, not a zip
    case("truncated.npz").write_bytes(raw[: len(raw) // 2])
    _write_npz(case("noheader.npz", ("no header",)), theta=theta)
    _write_npz(case("notheta.npz", ("no theta",)), header=_valid_header(layout))
    _write_npz(case("badjson.npz", ("not valid JSON",)), header=np.array("{nope"), theta=theta)
    _write_npz(case("numheader.npz", ("header",)), header=np.arange(3), theta=theta)
    _write_npz(case("format.npz", ("format is 'other'",)),
               header=_valid_header(layout, format="other"), theta=theta)
    _write_npz(case("version.npz", ("format_version 2",)),
               header=_valid_header(layout, format_version=2), theta=theta)
    _write_npz(case("badlayout.npz", ("bad layout",)),
               header=_valid_header(layout, layout={"tensors": 5}), theta=theta)
    _write_npz(case("short.npz", ("32 values", "needs 33")), header=_valid_header(layout),
               theta=theta[:-1])
    _write_npz(case("int.npz", ("theta is a int64",)), header=_valid_header(layout),
               theta=np.arange(33))
    _write_npz(case("nan.npz", ("non-finite",)), header=_valid_header(layout),
               theta=np.where(np.arange(33) == 4, np.nan, theta))
    _write_npz(case("maskshape.npz", ("mask",)), header=_valid_header(layout), theta=theta,
               mask=np.ones(5, dtype=bool))
    _write_npz(case("maskdtype.npz", ("mask",)), header=_valid_header(layout), theta=theta,
               mask=np.ones(33))
    _write_npz(case("edited.npz", ("model_hash",)),
               header=_valid_header(layout, model_hash=model_hash(theta, layout)), theta=theta + 1)
    with zipfile.ZipFile(case("garbage.npz", ("cannot read theta.npy",)), "w") as zf:
        zf.writestr("header.npy", _npy(_valid_header(layout)))
        zf.writestr("theta.npy", b"\x93NUMPY garbage with a valid CRC")
    flipped = bytearray(raw)
    flipped[raw.index(b"theta.npy") + 200] ^= 0xFF  # inside theta's data: bad CRC
    case("flipped.npz").write_bytes(bytes(flipped))

    for path, fragments in cases:
        with pytest.raises(ModelFileError) as exc_info:
            load_model(path)
        _assert_one_line(exc_info, path, *fragments)


def test_layout_mismatch_names_the_tensor(tmp_path, theta):
    saved = Layout([("enc.W", (3, 4), "encoder", "weight"),
                    ("dec.gru.W_hh", (42, 14), "decoder", "weight")])
    path = save_model(tmp_path / "model.npz", np.zeros(saved.size), saved, {})
    expected = Layout([("enc.W", (3, 4), "encoder", "weight"),
                       ("dec.gru.W_hh", (48, 16), "decoder", "weight")])
    with pytest.raises(ModelFileError) as exc_info:
        load_model(path, expected_layout=expected)
    _assert_one_line(exc_info, path, "layout does not match the config: dec.gru.W_hh has shape "
                     "(42, 14), expected (48, 16)")
    others = {
        "tensor dec.b is missing": Layout([("enc.W", (3, 4), "encoder", "weight"),
                                           ("dec.gru.W_hh", (42, 14), "decoder", "weight"),
                                           ("dec.b", (2,), "decoder", "bias")]),
        "unexpected tensor dec.gru.W_hh": Layout([("enc.W", (3, 4), "encoder", "weight")]),
        "enc.W is encoder/weight, expected encoder/bias": Layout(
            [("enc.W", (3, 4), "encoder", "bias"), ("dec.gru.W_hh", (42, 14), "decoder", "weight")]),
        "another order": Layout([("dec.gru.W_hh", (42, 14), "decoder", "weight"),
                                 ("enc.W", (3, 4), "encoder", "weight")]),
    }
    for fragment, other in others.items():
        with pytest.raises(ModelFileError) as exc_info:
            load_model(path, expected_layout=other)
        _assert_one_line(exc_info, path, fragment)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_files_never_escape_as_other_errors(tmp_path_factory, data):
    """Random truncations and byte flips: the file loads unchanged or raises ModelFileError."""
    layout = Layout(SPEC)
    theta = np.linspace(-1, 1, layout.size)
    folder = tmp_path_factory.mktemp("fuzz")
    raw = save_model(folder / "m.npz", theta, layout, {"c": 1}, mask=theta > 0).read_bytes()
    buf = bytearray(raw)
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(0, len(raw) - 1))]
    for _ in range(data.draw(st.integers(1, 3))):
        if buf:
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] ^= data.draw(st.integers(1, 255))
    path = folder / "bad.npz"
    path.write_bytes(bytes(buf))
    try:
        m = load_model(path)
    except ModelFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert np.array_equal(m.theta, theta) and m.layout == layout
