"""pa-ci encode / decode / eval / train on the command line, and the shipped model."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from pa_ci.chain.ace import ace, default_params
from pa_ci.chain.audio import read_audio
from pa_ci.codec.bitstream import HEADER_SIZE, read_stream
from pa_ci.codec.coder import SHIPPED_MODEL, load_codec
from pa_ci.codec.frae import FraeConfig, forward, init_params
from pa_ci.codec.model_file import save_model
from pa_ci.codec.frae import frae_layout

P = default_params()


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PA_CI_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def test_shipped_model_is_small_and_loads():
    codec = load_codec()
    assert SHIPPED_MODEL.stat().st_size < 40_000
    assert codec.config == FraeConfig()
    assert codec.n_weights == 3300 and codec.model.layout.size == 3428
    assert codec.model.meta.get("test_vstoi") is None or 0.45 < codec.model.meta["test_vstoi"] < 1


def test_encode_decode_round_trip(run_cli, arctic_file, tmp_path):
    r = run_cli("encode", arctic_file, "-o", tmp_path / "a.frae", "--json")
    assert r.code == 0, r.err
    info = r.json()
    x, fs = read_audio(arctic_file)
    frames = math.ceil(len(x) / P.hop)
    size = (tmp_path / "a.frae").stat().st_size
    assert info["frames"] == frames and size == HEADER_SIZE + math.ceil(frames * 6 / 8)
    assert info["bitrate_bps"] == pytest.approx(6 * 16000 / 18)
    assert info["measured_bitrate_bps"] == pytest.approx(8 * size / (frames * 18 / 16000))
    assert 0 < info["index_entropy_bits"] <= 6
    codec = load_codec()
    out = forward(codec.theta, codec.config, [ace(x, fs, P)])
    assert np.array_equal(read_stream(tmp_path / "a.frae").indices, out.indices)
    # pattern
    r = run_cli("decode", tmp_path / "a.frae", "-o", tmp_path / "a.npz", "--json")
    assert r.code == 0, r.err
    with np.load(tmp_path / "a.npz") as z:
        assert np.array_equal(z["pattern"], out.decoded.astype(np.float32))
        assert int(z["n_samples"]) == len(x)
    # audio
    r = run_cli("decode", tmp_path / "a.frae", "-o", tmp_path / "a.wav")
    assert r.code == 0, r.err
    y, fs2 = sf.read(tmp_path / "a.wav")
    assert fs2 == 16000 and len(y) == len(x) and np.max(np.abs(y)) > 0.1


@pytest.mark.parametrize("content", [None, b"garbage\n", "trunc"])
def test_decode_bad_streams_fail_with_one_line_and_no_output(run_cli, arctic_file, tmp_path, content):
    bad = tmp_path / "bad.frae"
    if content == "trunc":
        run_cli("encode", arctic_file, "-o", tmp_path / "good.frae")
        bad.write_bytes((tmp_path / "good.frae").read_bytes()[:40])
    elif content is not None:
        bad.write_bytes(content)
    r = run_cli("decode", bad, "-o", tmp_path / "out.wav")
    assert r.code == 1 and r.err.startswith("error: ") and r.err.count("\n") == 1
    assert "bad.frae" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "out.wav").exists()


def test_stream_from_another_model_is_refused(run_cli, arctic_file, tmp_path):
    cfg = FraeConfig()
    other = save_model(tmp_path / "other.npz", init_params(cfg, 5), frae_layout(cfg), cfg.to_dict())
    assert run_cli("encode", arctic_file, "-o", tmp_path / "a.frae", "--model", other).code == 0
    r = run_cli("decode", tmp_path / "a.frae", "-o", tmp_path / "a.wav")
    assert r.code == 1 and "--model" in r.err and not (tmp_path / "a.wav").exists()
    assert run_cli("decode", tmp_path / "a.frae", "-o", tmp_path / "a.wav", "--model", other).code == 0


def test_decode_rejects_other_output_types(run_cli, arctic_file, tmp_path):
    run_cli("encode", arctic_file, "-o", tmp_path / "a.frae")
    r = run_cli("decode", tmp_path / "a.frae", "-o", tmp_path / "a.mp3")
    assert r.code == 2 and ".wav" in r.err


def test_eval_json_on_the_tiny_split(run_cli):
    r = run_cli("eval", "--tiny", "--json")
    assert r.code == 0, r.err
    d = r.json()
    for key in ("vstoi", "reference_vstoi", "bitrate_bps", "n_weights", "measured_bitrate_bps",
                "index_entropy_bits", "codewords_used"):
        assert key in d
    assert d["n_weights"] == 3300 and 0 < d["vstoi"] < 1 and 0 < d["reference_vstoi"] < 1
    assert d["bitrate_bps"] == pytest.approx(5333.33, abs=0.01)


def test_eval_of_a_broken_model_file_is_one_line(run_cli, tmp_path):
    (tmp_path / "m.npz").write_bytes(b"not a model")
    r = run_cli("eval", tmp_path / "m.npz")
    assert r.code == 1 and r.err.startswith("error: ") and "m.npz" in r.err


def test_train_cli_then_eval_and_resume(run_cli, tmp_path):
    args = ["train", "--tiny", "--iters", "2", "--seed", "4", "--warm-start", "3", "-o", tmp_path / "run"]
    r = run_cli(*args, "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["iterations"] == 2 and (tmp_path / "run" / "model.npz").exists()
    r = run_cli(*args)
    assert r.code == 1 and "--resume" in r.err
    args[3] = "3"
    r = run_cli(*args, "--resume", "--json")
    assert r.code == 0, r.err
    assert r.json()["iterations"] == 3
    assert run_cli("eval", tmp_path / "run", "--tiny").code == 0


def test_shipped_model_is_the_documented_one():
    """The shipped model is stage 6 of examples/base_model (the same bytes), and the README's
    table (examples/shipped_model.json) was made with it."""
    import json
    root = SHIPPED_MODEL.parents[3]
    assert SHIPPED_MODEL.read_bytes() == (root / "examples/base_model/base-mix8/model.npz").read_bytes()
    figures = json.loads((root / "examples/shipped_model.json").read_text())
    model_hash = load_codec().hash
    assert figures["test"]["model_hash"] == figures["train"]["model_hash"] == model_hash
