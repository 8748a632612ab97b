"""pa_ci.codec.firmware: the generated C99 decoder / encoder compiles strictly and gives pa_ci's
frames and indices; pa-ci export --format c / --check and pa-ci eval --export."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pa_ci.codec import export as ex
from pa_ci.codec import firmware as fw
from pa_ci.codec import frae
from pa_ci.errors import ParameterError
from pa_ci.codec.frae import FraeConfig

ROOT = Path(__file__).resolve().parents[1]
ARCTIC = ROOT / "pa_ci" / "bundled" / "speech" / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav"
CC = fw.find_cc()
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH: "
                                                  "the generated C cannot be built here")


def _build(folder: Path, name: str, harness: str, real_float: bool = False) -> Path:
    main = folder / f"main_{harness}.c"
    main.write_text(fw.harness_source(name))
    exe = folder / f"run_{harness}{'_f' if real_float else ''}"
    flags = fw.compile_flags() + ["-O2", f"-DHARNESS_{harness.upper()}"]
    if real_float:
        flags.append(f"-D{name.upper()}_FLOAT")
    r = subprocess.run([CC, *flags, f"-I{folder}", str(main), str(folder / f"{name}.c"), "-o",
                        str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr         # -Wall -Wextra -Werror -pedantic: no warning
    return exe


def _decode_c(exe: Path, indices: np.ndarray) -> np.ndarray:
    out = subprocess.run([str(exe), "dec", str(len(indices))], check=True, capture_output=True,
                         text=True, input="\n".join(map(str, indices)) + "\n").stdout
    return np.array([[float.fromhex(v) for v in ln.split()] for ln in out.splitlines()])


def _encode_c(exe: Path, pattern: np.ndarray) -> np.ndarray:
    text = "\n".join(" ".join(float.hex(float(v)) for v in row) for row in pattern) + "\n"
    out = subprocess.run([str(exe), "enc", str(len(pattern))], check=True, capture_output=True,
                         text=True, input=text).stdout
    return np.array(out.split(), dtype=np.int64)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped model and a stream of the bundled utterance written by `pa-ci encode`."""
    from pa_ci.codec.bitstream import read_stream
    from pa_ci.codec.coder import encode_file, load_codec
    codec = load_codec()
    path = tmp_path_factory.mktemp("stream") / "a.frae"
    encode_file(ARCTIC, path)
    return codec, read_stream(path).indices


@needs_cc
@pytest.mark.parametrize("values", ["float32", "int8", "int8-row", "int16-row"])
def test_c_decoder_equals_the_python_decoder_frame_by_frame(shipped, values, tmp_path):
    codec, indices = shipped
    files = fw.write_c(tmp_path, codec.theta, codec.config, part="decoder", values=values,
                       name="rx", model_hash=codec.hash)
    assert [p.name for p in files.paths] == ["rx.h", "rx.c"]
    assert "malloc" not in files.source and "#include <math.h>" not in files.source
    deq = ex.from_bytes(ex.export_bytes(codec.theta, codec.config, values=values)).theta
    ref = frae.decode(deq, codec.config, indices)         # pa_ci float64, dequantised theta
    got = _decode_c(_build(tmp_path, "rx", "dec"), indices)
    assert got.shape == ref.shape == (len(indices), 22) and len(indices) > 2000
    np.testing.assert_array_equal(got != 0, ref != 0)     # the same 8 channels on every frame
    assert np.all((got != 0).sum(axis=1) == 8)
    # double arithmetic follows pa_ci bit for bit; what is left is the float output rounding
    assert np.max(np.abs(got - ref)) <= 1e-6
    np.testing.assert_array_equal(got, ref.astype(np.float32))


@needs_cc
def test_c_float_build_and_bad_index(shipped, tmp_path):
    codec, indices = shipped
    fw.write_c(tmp_path, codec.theta, codec.config, part="decoder", name="rx")
    got = _decode_c(_build(tmp_path, "rx", "dec", real_float=True), indices[:300])
    ref = frae.decode(ex.from_bytes(ex.export_bytes(codec.theta, codec.config)).theta,
                      codec.config, indices[:300])
    assert np.all((got != 0).sum(axis=1) == 8)
    # float arithmetic is close early on; the open-loop GRU drifts later (module docs)
    assert np.max(np.abs(got[:50] - ref[:50])) < 1e-4
    exe = _build(tmp_path, "rx", "dec")
    out = subprocess.run([str(exe), "dec", "1"], input="64\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "bad" and set(out[1].split()) == {"0x0p+0"}


@needs_cc
@pytest.mark.parametrize("values", ["float32", "int8-row"])
def test_c_encoder_indices_match_the_python_encoder(shipped, values, tmp_path):
    from pa_ci.chain.ace import ace
    from pa_ci.chain.files import load_audio_at
    codec, _ = shipped
    x = ace(load_audio_at(ARCTIC, 16000), 16000).astype(np.float32).astype(np.float64)
    fw.write_c(tmp_path, codec.theta, codec.config, part="encoder", values=values, name="tx")
    deq = ex.from_bytes(ex.export_bytes(codec.theta, codec.config, part="encoder",
                                        values=values)).theta
    ref = frae.forward(deq, codec.config, x).indices
    got = _encode_c(_build(tmp_path, "tx", "enc"), x)
    np.testing.assert_array_equal(got, ref)              # double: every index (measured)
    got_f = _encode_c(_build(tmp_path, "tx", "enc", real_float=True), x)
    assert np.mean(got_f == ref) > 0.5                   # float: its own closed loop


@needs_cc
def test_whole_part_and_measured_sizes(tmp_path):
    cfg = FraeConfig(n_channels=6, enc_hidden=3, dec_hidden=4, latent_dim=2, codebook_size=5,
                     output_maxima=0)
    theta = frae.init_params(cfg, 2)
    theta[frae.frae_layout(cfg)["dec.out.W"].slice] = 0.0       # an empty CSR matrix
    files = fw.write_c(tmp_path / "c", theta, cfg, part="whole", values="int8", name="both")
    m = fw.measure(tmp_path / "c", "both", "whole")
    assert m["code_bytes"] > 0 and m["rodata_bytes"] > 0
    assert m["decoder_state_bytes"] == 4 * 8 and m["encoder_state_bytes"] == 7 * 8
    assert files.macs["macs"] == fw.macs_per_frame(theta, cfg, "whole", "int8")["macs"]
    pattern = np.random.default_rng(0).uniform(0, 1, (40, 6)) * \
        (np.random.default_rng(1).uniform(size=(40, 6)) < 0.5)
    out = frae.forward(ex.from_bytes(ex.export_bytes(theta, cfg, part="whole",
                                                     values="int8")).theta, cfg, pattern)
    got = _decode_c(_build(tmp_path / "c", "both", "dec"), out.indices)
    np.testing.assert_array_equal(got, out.decoded.astype(np.float32))   # output_maxima 0


def test_bad_arguments(tmp_path):
    theta = frae.init_params(FraeConfig(), 0)
    with pytest.raises(ParameterError, match="float16 cannot be written as C|'float16'"):
        fw.generate_c(theta, FraeConfig(), values="float16")
    with pytest.raises(ParameterError, match="C name"):
        fw.generate_c(theta, FraeConfig(), name="9x")
    with pytest.raises(ParameterError, match="part"):
        fw.generate_c(theta, FraeConfig(), part="rx")
    (tmp_path / "f").write_text("x")
    from pa_ci.errors import ModelFileError
    with pytest.raises(ModelFileError, match="is a file"):
        fw.write_c(tmp_path / "f", theta, FraeConfig())


# --------------------------------------------------------------------------- command line
def _one_error(result, *fragments):
    assert result.code != 0 and "Traceback" not in result.err
    errors = [ln for ln in result.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.err
    for f in fragments:
        assert f in errors[0], errors[0]


def test_cli_export_format_c(run_cli, tmp_path):
    r = run_cli("export", "--part", "decoder", "--format", "c", "--values", "int8-row",
                "-o", str(tmp_path / "fw"), "--json")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["format"] == "c" and 950 < d["macs_per_frame"]["macs"] <= 980  # 5 weights flush to 0
    assert (tmp_path / "fw" / "frae.h").exists() and (tmp_path / "fw" / "frae.c").exists()
    assert sorted(p.name for p in (tmp_path / "fw").iterdir()) == ["frae.c", "frae.h"]
    _one_error(run_cli("export", "--format", "c", "--values", "float16", "-o",
                       str(tmp_path / "x")), "float16")
    _one_error(run_cli("export", "--format", "c", "--name", "a-b", "-o", str(tmp_path / "x")),
               "C name")


def test_cli_export_check_and_eval_export(run_cli, tmp_path):
    out = tmp_path / "d.pacx"
    r = run_cli("export", "-o", str(out), "--values", "int8-row", "--check", "--tiny", "--json")
    assert r.code == 0, r.err
    chk = json.loads(r.out)["check"]
    assert chk["n_items"] == 8 and abs(chk["vstoi_loss"]) < 0.02
    assert chk["vstoi_float64"] - chk["vstoi"] == pytest.approx(chk["vstoi_loss"])
    r = run_cli("eval", "--export", str(out), "--tiny", "--json")
    assert r.code == 0, r.err
    e = json.loads(r.out)
    assert e["vstoi"] == pytest.approx(chk["vstoi"]) and e["export_values"] == "int8-row"
    assert "vstoi_open_loop" in e
    text = run_cli("eval", "--export", str(out), "--tiny")
    assert "loss" in text.out and "int8-row" in text.out
    r = run_cli("eval", str(out), "--tiny", "--json")  # a decoder export of the shipped model:
    assert r.code == 0, r.err                            # its encoder is the shipped one
    assert json.loads(r.out)["vstoi"] == pytest.approx(chk["vstoi"])
    from pa_ci.codec.frae import FraeConfig, frae_layout, init_params
    from pa_ci.codec.model_file import save_model
    cfg = FraeConfig()
    other = save_model(tmp_path / "other.npz", init_params(cfg, 3), frae_layout(cfg), cfg.to_dict())
    foreign = tmp_path / "foreign.pacx"
    assert run_cli("export", str(other), "-o", str(foreign)).code == 0
    _one_error(run_cli("eval", str(foreign), "--tiny"), "whole export")  # no encoder known for it
    whole = tmp_path / "w.pacx"
    assert run_cli("export", "-o", str(whole), "--part", "whole").code == 0
    r = run_cli("eval", str(whole), "--tiny", "--json")
    assert r.code == 0, r.err and json.loads(r.out)["export_part"] == "whole"
    (tmp_path / "junk.pacx").write_bytes(b"PACX" + bytes(10))
    _one_error(run_cli("eval", "--export", str(tmp_path / "junk.pacx"), "--tiny"),
               "junk.pacx", "truncated")
