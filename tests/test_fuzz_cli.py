"""Fuzzing the command line with mutated real inputs (seeded: ``numpy.random.default_rng(0)``).

Real inputs (the bundled WAV/FLAC files, the shipped model, a stream written by ``pa-ci
encode``, exports written by ``pa-ci export``, pruning schedules) are truncated, bit-flipped,
given wrong or huge header fields (with their CRCs recomputed, so that the checks behind the
CRC are reached) or have arrays replaced; numeric options get nan, inf, -1, 0, 2**63, 1e308,
'' and 'abc'. Every case runs ``pa_ci.cli.main`` in this process (a few hundred cases in a
few minutes) and must either

- fail cleanly: a documented exit status (``pa_ci.cli.EXIT_*``: 1 runtime / 2 usage error, or
  2 for every error before that split), stderr's last line one ``error:``
  line (the only one), no "unexpected" / "Traceback", and no new file or folder anywhere
  (the output it named included); or
- succeed (some mutations are harmless: a flipped sample, a seed of 0) with a complete,
  valid output, which is then read back with the library's own readers.

All failures are collected and reported together.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from pa_ci.codec import bitstream

from pa_ci.codec import export
from pa_ci.codec.coder import SHIPPED_MODEL
from pa_ci.codec.layout import Layout
from pa_ci.codec.model_file import load_model, model_hash

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "pa_ci" / "bundled" / "speech"
ARCTIC = SPEECH / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav"
SCHEDULES = ROOT / "examples" / "sensitivity_schedule"
VALUES = ["nan", "inf", "-1", "0", str(2**63), "1e308", "", "abc"]


@dataclass
class Case:
    name: str
    argv: list[str]
    ok: Callable[[str, Path], None] | None = None  # validates a success (stdout, work folder)


# ----------------------------------------------------------------------------- validators
def _json(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {out[:300]!r}"
    return json.loads(lines[0])


def _finite_score(out: str, _work: Path) -> None:
    v = _json(out)["vstoi"]
    assert isinstance(v, float) and math.isfinite(v) and -1.0 <= v <= 1.0, v


def _wav(name: str) -> Callable[[str, Path], None]:
    def check(out: str, work: Path) -> None:
        x, fs = sf.read(work / name)
        assert fs == 16000 and x.size > 0 and np.all(np.isfinite(x))
    return check


def _stream(name: str) -> Callable[[str, Path], None]:
    def check(out: str, work: Path) -> None:
        assert bitstream.read_stream(work / name).n_frames > 0
    return check


def _pattern(name: str) -> Callable[[str, Path], None]:
    def check(out: str, work: Path) -> None:
        with np.load(work / name) as z:
            assert np.all(np.isfinite(z["pattern"]))
    return check


def _export(name: str) -> Callable[[str, Path], None]:
    def check(out: str, work: Path) -> None:
        export.read_export(work / name)
    return check


def _report(out: str, _work: Path) -> None:
    assert _json(out)["model_hash"]


def _run_folder(name: str, result: bool = True) -> Callable[[str, Path], None]:
    def check(out: str, work: Path) -> None:
        folder = work / name
        m = load_model(folder / "model.npz")
        assert np.all(np.isfinite(m.theta))
        if result:
            json.loads((folder / "result.json").read_text())
        leftovers = [p.name for p in folder.rglob(".*")]
        assert not leftovers, f"temporary or lock files left: {leftovers}"
    return check


# ----------------------------------------------------------------------------- byte mutations
def _flip(data: bytes, rng: np.random.Generator, n: int, lo: int = 0, hi: int | None = None) -> bytes:
    b = bytearray(data)
    hi = len(b) if hi is None else hi
    for pos in rng.integers(lo, hi, n):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


def _put(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _wav_mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    """RIFF/WAVE with the canonical 44-byte header (fmt at 12, data size at 40)."""
    assert data[:4] == b"RIFF" and data[36:40] == b"data"
    n = len(data)
    m = {"empty": b"", "riff only": data[:4], "header only": data[:44], "half header": data[:22],
         "one sample byte": data[:45], "odd length": data[:n - 1], "half": data[:n // 2],
         "RIFX": b"RIFX" + data[4:], "not WAVE": data[:8] + b"WAVX" + data[12:],
         "no fmt": data[:12] + b"fmX " + data[16:], "garbage": rng.bytes(n),
         "appended garbage": data + rng.bytes(4096), "silent": data[:44] + bytes(n - 44),
         "riff size huge": _put(data, 4, "<I", 0xFFFFFFFF),
         "data size huge": _put(data, 40, "<I", 0xFFFFFFFF),
         "data size 2**31": _put(data, 40, "<I", 0x7FFFFFFF),
         "data size 0": _put(data, 40, "<I", 0),
         "fmt size huge": _put(data, 16, "<I", 0xFFFFFFF0),
         "format tag 0": _put(data, 20, "<H", 0), "format tag float": _put(data, 20, "<H", 3),
         "format tag 0xFFFE": _put(data, 20, "<H", 0xFFFE),
         "channels 0": _put(data, 22, "<H", 0), "channels 65535": _put(data, 22, "<H", 65535),
         "rate 0": _put(data, 24, "<I", 0), "rate 1": _put(data, 24, "<I", 1),
         "rate huge": _put(data, 24, "<I", 0xFFFFFFFF),
         "block align 0": _put(data, 32, "<H", 0), "bits 0": _put(data, 34, "<H", 0),
         "bits 7": _put(data, 34, "<H", 7), "bits 64": _put(data, 34, "<H", 64)}
    for i in range(3):
        m[f"flip header {i}"] = _flip(data, rng, 2, 0, 44)
        m[f"flip samples {i}"] = _flip(data, rng, 20, 44)
    return m


def _flac_mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    n = len(data)
    return {"flac truncated": data[:n // 3], "flac header only": data[:42],
            "flac flipped": _flip(data, rng, 30, 42), "flac magic": b"fLaX" + data[4:],
            "flac streaminfo flipped": _flip(data, rng, 3, 8, 42)}


# --- model files: rebuild the zip with members replaced
def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_claiming(shape: tuple[int, ...], descr: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _zip(members: dict[str, bytes], huge: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = buf.getvalue()
    if huge is not None:  # declare a huge uncompressed size for one member (both headers)
        b = bytearray(data)
        key = huge.encode()
        for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = 0
            while (at := b.find(sig, at)) >= 0:
                name_at = at + (30 if sig == b"PK\x03\x04" else 46)
                if b[name_at:name_at + len(key)] == key:
                    struct.pack_into("<I", b, at + size_at, 0xFFFFFFF0)
                at += 4
        data = bytes(b)
    return data


def _model_mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    theta = np.lib.format.read_array(io.BytesIO(members["theta.npy"]))
    header = json.loads(str(np.lib.format.read_array(io.BytesIO(members["header.npy"]))[()]))

    def with_(**repl: bytes | None) -> bytes:
        m = dict(members)
        for k, v in repl.items():
            k = k.replace("_", ".")
            if v is None:
                m.pop(k, None)
            else:
                m[k] = v
        return _zip(m)

    def hdr(**changes) -> bytes:
        h = json.loads(json.dumps(header))
        for k, v in changes.items():
            if isinstance(v, dict) and isinstance(h.get(k), dict):
                h[k].update(v)
            else:
                h[k] = v
        return _npy(np.array(json.dumps(h)))

    huge = theta * 1e300  # finite, with its hash recorded: only the values give it away
    huge_header = _npy(np.array(json.dumps(dict(header, model_hash=model_hash(
        huge, Layout.from_dict(header["layout"]))))))
    nan_theta = theta.copy()
    nan_theta[3] = np.nan
    edited = theta.copy()
    edited[0] += 1.0
    n = len(data)
    out = {"empty": b"", "truncated 10": data[:10], "truncated 100": data[:100],
           "truncated half": data[:n // 2], "truncated last": data[:n - 1],
           "garbage": rng.bytes(n), "not a zip": b"PK\x03\x04" + rng.bytes(200),
           "no header": with_(header_npy=None), "no theta": with_(theta_npy=None),
           "theta short": with_(theta_npy=_npy(theta[:-1])),
           "theta float32": with_(theta_npy=_npy(theta.astype(np.float32))),
           "theta 2-D": with_(theta_npy=_npy(theta[None, :])),
           "theta int": with_(theta_npy=_npy(theta.astype(np.int64))),
           "theta nan": with_(theta_npy=_npy(nan_theta)),
           "theta edited": with_(theta_npy=_npy(edited)),
           "theta 1e300, hash fixed": with_(theta_npy=_npy(huge), header_npy=huge_header),
           "theta text": with_(theta_npy=b"hello"),
           "theta claims 2**33": with_(theta_npy=_npy_claiming((2**33,), "<f8", bytes(64))),
           "theta claims 2**62 x 2**2": with_(theta_npy=_npy_claiming((2**62, 4), "<f8", bytes(64))),
           "theta object": with_(theta_npy=_npy_claiming((3,), "|O", bytes(24))),
           "theta zip size huge": _zip(members, huge="theta.npy"),
           "header zip size huge": _zip(members, huge="header.npy"),
           "mask wrong shape": with_(mask_npy=_npy(np.ones(5, dtype=bool))),
           "mask int": with_(mask_npy=_npy(np.ones(theta.size, dtype=np.int8))),
           "mask claims 2**36": with_(mask_npy=_npy_claiming((2**36,), "|b1", bytes(64))),
           "mask all false": with_(mask_npy=_npy(np.zeros(theta.size, dtype=bool))),
           "header not json": with_(header_npy=_npy(np.array("{not json"))),
           "header list": with_(header_npy=_npy(np.array("[1, 2]"))),
           "header bytes": with_(header_npy=_npy(np.frombuffer(b"abcd", np.uint8))),
           "format other": with_(header_npy=hdr(format="npz")),
           "format version 2": with_(header_npy=hdr(format_version=2)),
           "layout malformed": with_(header_npy=hdr(layout={"tensors": 3})),
           "config enc_hidden 100000": with_(header_npy=hdr(config={"enc_hidden": 100000})),
           "config codebook 2**40": with_(header_npy=hdr(config={"codebook_size": 2**40})),
           "config unknown key": with_(header_npy=hdr(config={"hidden": 3})),
           "config not a dict": with_(header_npy=hdr(config=[1])),
           "hash wrong": with_(header_npy=hdr(model_hash="0" * 16)),
           "extra member": with_(extra_npy=_npy(np.arange(3))),
           # harmless: an edited theta without a recorded hash is just another model
           "edited, no hash": with_(theta_npy=_npy(edited), header_npy=hdr(model_hash=None))}
    for i in range(4):
        out[f"flip {i}"] = _flip(data, rng, 1 + i)
    return out


# --- streams and exports: the fields behind the CRCs
def _stream_bytes(head: tuple, payload: bytes) -> bytes:
    h = bitstream._HEAD.pack(*head, zlib.crc32(payload))
    return h + bitstream._CRC.pack(zlib.crc32(h)) + payload


def _stream_mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    head = list(bitstream._HEAD.unpack_from(data)[:-1])  # magic .. n_samples
    magic, version, n_bits, flags, mhash, fs, hop, n_frames, n_samples = head
    payload = data[bitstream.HEADER_SIZE:]

    def craft(payload: bytes = payload, **kw) -> bytes:
        h = dict(zip(["magic", "version", "n_bits", "flags", "hash", "fs", "hop", "n_frames",
                      "n_samples"], head))
        h.update(kw)
        return _stream_bytes(tuple(h.values()), payload)

    big = bitstream.pack_indices(np.full(n_frames, 65535), 16)
    n = len(data)
    out = {"empty": b"", "magic only": data[:4], "header only": data[:bitstream.HEADER_SIZE],
           "truncated": data[:n - 1], "appended": data + b"\0", "garbage": rng.bytes(n),
           "version 2": craft(version=2), "flags 1": craft(flags=1),
           "n_bits 0": craft(n_bits=0), "n_bits 16, index 65535": craft(big, n_bits=16),
           "n_bits 17": craft(n_bits=17), "hash other": craft(hash=bytes(8)),
           "rate 0": craft(fs=0), "rate huge": craft(fs=0xFFFFFFFF),
           "hop huge": craft(hop=65535, n_samples=n_frames * 65535),
           "n_samples huge": craft(n_samples=2**64 - 1),
           "n_frames 0": craft(b"", n_frames=0, n_samples=0),
           "n_frames huge": craft(n_frames=2**32 - 1, n_samples=(2**32 - 1) * hop),
           "padding bits": craft(payload[:-1] + bytes([payload[-1] | 1]))}
    for i in range(4):
        out[f"flip {i}"] = _flip(data, rng, 1 + i)
    return out


def _export_bytes(fields: dict, payload: bytes) -> bytes:
    h = export._HEAD.pack(*fields.values(), zlib.crc32(payload))
    return h + export._CRC.pack(zlib.crc32(h)) + payload


_EXPORT_FIELDS = ["magic", "version", "vtype", "part", "flags", "C", "He", "Hd", "D", "K",
                  "maxima", "n_tensors", "frame_rate", "hash", "payload_size"]


def _export_mutations(data: bytes, rng: np.random.Generator, tag: str) -> dict[str, bytes]:
    fields = dict(zip(_EXPORT_FIELDS, export._HEAD.unpack_from(data)[:-1]))
    payload = data[export.HEADER_SIZE:]

    def craft(payload: bytes = payload, **kw) -> bytes:
        f = dict(fields, payload_size=len(payload))
        f.update(kw)
        return _export_bytes(f, payload)

    n = len(data)
    out = {"empty": b"", "header only": data[:export.HEADER_SIZE], "truncated": data[:n - 1],
           "appended": data + b"\0", "garbage": rng.bytes(n),
           "hidden 65535": craft(He=65535, Hd=65535, C=65535),
           "codebook 2**32-1": craft(K=2**32 - 1), "codebook 65536": craft(K=65536),
           "hidden 4096": craft(Hd=4096), "hidden 1000, no payload": craft(b"", He=1000, Hd=1000),
           "channels 0": craft(C=0), "maxima 255": craft(maxima=255),
           "n_tensors 0": craft(n_tensors=0), "payload size lies": craft(payload_size=2**32 - 1),
           "value type 7": craft(vtype=7), "part 5": craft(part=5), "version 3": craft(version=3),
           "flags 0x80": craft(flags=0x80), "frame rate nan": craft(frame_rate=math.nan),
           "frame rate -1": craft(frame_rate=-1.0), "frame rate inf": craft(frame_rate=math.inf),
           "payload flipped, CRC fixed": craft(_flip(payload, rng, 3)),
           "first byte of payload 7": craft(bytes([7]) + payload[1:]),
           "payload cut, CRC fixed": craft(payload[:len(payload) // 2])}
    for i in range(3):
        out[f"flip {i}"] = _flip(data, rng, 1 + i)
    return {f"{tag} {k}": v for k, v in out.items()}


# --- schedules
_SMALL_SCHEDULE = """version: 1
pruners:
  p1:
    class: SensitivityPruner
    sensitivities:
      'dec.gru.W_hh': 0.5
  agp:
    class: AutomatedGradualPruner
    initial_sparsity: 0.05
    final_sparsity: 0.7
    weights: [enc.gru.W_ih]
policies:
  - pruner:
      instance_name: p1
    starting_epoch: 0
    ending_epoch: 2
    frequency: 1
  - pruner: {instance_name: agp}
    epochs: [0, 1]
lr_schedulers:
  d: {class: StepLR, step_size: 2, gamma: 0.5}
"""


def _schedule_mutations(texts: dict[str, bytes], rng: np.random.Generator) -> dict[str, bytes]:
    out: dict[str, bytes] = {"empty": b"", "only version": b"version: 1\n",
                             "deep nesting": b"version: 1\npruners: " + b"[" * 5000 + b"]" * 5000 + b"\n",
                             "long line": b"version: 1\n# " + b"x" * 1_000_000 + b"\n",
                             "latin-1": "version: 1\n# caf\u00e9\n".encode("latin-1"),
                             "NUL": b"version: 1\n\0\n", "tab": b"version: 1\npruners:\n\tp: 1\n",
                             "alias": b"version: 1\na: &x [1]\nb: *x\n"}
    for tag, text in texts.items():
        lines = text.split(b"\n")
        numbers = [i for i, ln in enumerate(lines) if any(c.isdigit() for c in ln.decode())
                   and b":" in ln and not ln.strip().startswith(b"#")]
        for v in VALUES:
            i = int(rng.choice(numbers))
            key, _, value = lines[i].partition(b":")
            new = b"[" + v.encode() + b"]" if value.strip().startswith(b"[") else v.encode()
            out[f"{tag} line {i + 1} = {v!r}"] = b"\n".join(lines[:i] + [key + b": " + new] + lines[i + 1:])
        for j in range(2):
            i = int(rng.integers(1, len(lines)))
            out[f"{tag} without line {i + 1}"] = b"\n".join(lines[:i] + lines[i + 1:])
            out[f"{tag} cut {j}"] = text[:int(rng.integers(1, len(text)))]
            out[f"{tag} flipped {j}"] = _flip(text, rng, 2)
        out[f"{tag} duplicate key"] = text.replace(b"pruners:", b"pruners:\npruners:", 1)
    return out


# ----------------------------------------------------------------------------- the cases
def _cases(inputs: Path) -> list[Case]:
    rng = np.random.default_rng(0)
    cases: list[Case] = []

    def save(name: str, data: bytes) -> str:
        path = inputs / name.replace(" ", "_").replace("/", "_").replace("'", "")
        path.write_bytes(data)
        return str(path)

    stream = str(inputs / "real.paci")  # written by the CLI itself (the test's first step)

    # --- audio
    wav = ARCTIC.read_bytes()
    flac = next(SPEECH.rglob("*.flac")).read_bytes()
    audio = {**_wav_mutations(wav, rng), **_flac_mutations(flac, rng)}
    for name, data in audio.items():
        p = save(f"audio {name}" + (".flac" if name.startswith("flac") else ".wav"), data)
        cases += [Case(f"vstoi audio {name}", ["vstoi", p, "--json"], _finite_score),
                  Case(f"vocode audio {name}", ["vocode", p, "-o", "v.wav", "--json"], _wav("v.wav")),
                  Case(f"encode audio {name}", ["encode", p, "-o", "s.paci", "--json"], _stream("s.paci"))]
    for name in rng.choice(sorted(audio), 8, replace=False):
        p = str(inputs / f"audio_{name}".replace(" ", "_"))
        p = p + (".flac" if name.startswith("flac") else ".wav")
        cases.append(Case(f"vstoi --noisy audio {name}", ["vstoi", str(ARCTIC), "--noisy", p, "--json"],
                          _finite_score))

    # --- models
    for name, data in _model_mutations(SHIPPED_MODEL.read_bytes(), rng).items():
        p = save(f"model {name}.npz", data)
        cases += [Case(f"report model {name}", ["report", p, "--json"], _report),
                  Case(f"export model {name}", ["export", p, "-o", "m.pacx", "--json"], _export("m.pacx")),
                  Case(f"encode model {name}", ["encode", str(ARCTIC), "--model", p, "-o", "s.paci", "--json"],
                       _stream("s.paci")),
                  Case(f"eval model {name}", ["eval", p, "--tiny", "--json"], _finite_score)]

    # --- streams
    for name, data in _stream_mutations(Path(stream).read_bytes(), rng).items():
        p = save(f"stream {name}.paci", data)
        cases += [Case(f"decode stream {name} to wav", ["decode", p, "-o", "d.wav", "--json"], _wav("d.wav")),
                  Case(f"decode stream {name} to npz", ["decode", p, "-o", "d.npz", "--json"],
                       _pattern("d.npz"))]

    # --- exports
    for tag in ("decoder", "whole"):
        for name, data in _export_mutations((inputs / f"{tag}.pacx").read_bytes(), rng, tag).items():
            p = save(f"export {name}.pacx", data)
            cases += [Case(f"decode with export {name}", ["decode", stream, "--model", p, "-o", "d.wav", "--json"],
                           _wav("d.wav")),
                      Case(f"eval export {name}", ["eval", "--tiny", "--export", p, "--json"], _finite_score)]

    # --- schedules
    texts = {"small": _SMALL_SCHEDULE.encode(),
             "agp": (SCHEDULES / "agp.yaml").read_bytes(),
             "proposed": (SCHEDULES / "proposed_schedule.yaml").read_bytes()}
    for name, data in _schedule_mutations(texts, rng).items():
        p = save(f"schedule {name}.yaml", data)
        cases.append(Case(f"prune --schedule {name}",
                          ["prune", "--tiny", "--schedule", p, "--epoch-iters", "0", "-o", "run", "--json"],
                          _run_folder("run")))

    # --- numeric option values (base runs are as short as the commands allow)
    gains = ["--a", "--A", "--c", "--alpha", "--gamma"]
    families = {
        "train": (["train", "--tiny", "-o", "run", "--iters", "1", "--warm-start", "0", "--batch-size", "2",
                   "--json"],
                  ["--iters", "--seed", "--warm-start", "--batch-size", "--checkpoint-every", "--averaging",
                   "--blocking", "--calibrate", "--enc-hidden", "--dec-hidden", "--latent-dim",
                   "--codebook-size", "--output-maxima", *gains]),
        "prune": (["prune", "--tiny", "--rate", "0.5", "-o", "run", "--pa-iters", "1", "--finetune-iters", "1",
                   "--batch-size", "2", "--json"],
                  ["--rate", "--lambda", "--pa-iters", "--finetune-iters", "--seed", "--batch-size",
                   "--checkpoint-every", *gains]),
        "schedule": (["prune", "--tiny", "--schedule", save("schedule base.yaml", texts["small"]),
                      "--epoch-iters", "0", "-o", "run", "--json"], ["--epoch-iters", "--epochs"]),
    }
    checks = {"train": _run_folder("run", result=False), "prune": _run_folder("run"),
              "schedule": _run_folder("run")}
    for family, (base, options) in families.items():
        for opt in options:
            values = VALUES + (["100000", str(2**40)] if opt in ("--enc-hidden", "--dec-hidden",
                                                                 "--latent-dim", "--codebook-size") else [])
            for v in values:
                argv = list(base)
                if opt in argv:
                    argv[argv.index(opt) + 1] = v
                else:
                    argv[-1:-1] = [opt, v]
                cases.append(Case(f"{family} {opt} {v!r}", argv, checks[family]))
    return cases


# ----------------------------------------------------------------------------- known bugs
#: Cases that fail for bugs in modules this test's author could not change, with where the fix
#: belongs. Each must still fail (a fixed one is reported, to be removed from here).
KNOWN: dict[str, str] = {}  # case name -> why it fails today (each is reported if it passes)


# ----------------------------------------------------------------------------- the test
def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def _problem(case: Case, r, work: Path) -> str | None:
    import pa_ci.cli as cli_module
    # the documented statuses: 2 for every error, or 1 (runtime) / 2 (usage) where split
    statuses = {getattr(cli_module, n) for n in ("EXIT_ERROR", "EXIT_RUNTIME", "EXIT_USAGE")
                if hasattr(cli_module, n)}
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    if "Traceback" in r.err or "error: unexpected " in r.err or "PA_CI_DEBUG" in r.err:
        return f"crash: {lines[-1] if lines else r.err!r}"
    if r.code == 0:
        if case.ok is None:
            return "succeeded; expected an error"
        try:
            case.ok(r.out, work)
        except Exception as exc:  # noqa: BLE001 - any failure of the check is the finding
            return f"exit 0 but the output is not valid: {type(exc).__name__}: {exc}"
        return None
    if r.code not in statuses:
        return f"exit status {r.code}, expected one of {sorted(statuses)}: {lines[-1:] or r.err!r}"
    errors = [ln for ln in lines if ln.startswith("error:")]
    if not lines or not lines[-1].startswith("error: ") or len(errors) != 1:
        return f"stderr is not one error line at the end: {r.err[-400:]!r}"
    left = _tree(work)
    if left:
        return f"failed ({lines[-1][:120]}) but left {sorted(left)[:5]}"
    return None


class _Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def _runner(capsys):
    from pa_ci.cli import main

    def run(argv: list[str]) -> _Result:
        capsys.readouterr()
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - escaping main at all is a finding
            cap = capsys.readouterr()
            return _Result(-1, cap.out, cap.err + f"\nTraceback (escaped main): {exc!r}")
        cap = capsys.readouterr()
        return _Result(code, cap.out, cap.err)
    return run


#: Address-space limit of the process that runs the cases: an allocation a crafted input
#: provokes is then a MemoryError (a finding) rather than the kernel's OOM killer.
MEMORY_LIMIT = 8 * 2**30


def _forked(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child (so that a hard crash, e.g. heap corruption in compiled
    code, is one finding instead of the end of the test session); its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            body()
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            status = 70
        finally:
            os._exit(status)
    return os.waitpid(pid, 0)[1]


def test_fuzzed_inputs_give_one_error_line_or_a_valid_output(tmp_path, capsys, monkeypatch):
    """Runs in a fresh pytest process: the cases are forked from it, and fork() is unsafe in a
    process whose compiled kernels already started their (OpenMP) threads, as earlier tests do."""
    if os.environ.get("PA_CI_FUZZ_CHILD") != "1":
        import subprocess
        import sys
        env = dict(os.environ, PA_CI_FUZZ_CHILD="1")
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            f"{__file__}::test_fuzzed_inputs_give_one_error_line_or_a_valid_output"],
                           env=env, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        return
    inputs, work = tmp_path / "inputs", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    run = _runner(capsys)
    # the real inputs are written by the CLI in a child: this process runs no compiled kernel
    # (no threads), so that forking it stays safe

    def write_real() -> None:
        for argv in (["encode", str(ARCTIC), "-o", str(inputs / "real.paci")],
                     ["export", "-o", str(inputs / "decoder.pacx")],
                     ["export", "-o", str(inputs / "whole.pacx"), "--part", "whole", "--values",
                      "int8-row"]):
            r = run(argv)
            assert r.code == 0, r.err
    assert _forked(write_real) == 0
    cases = _cases(inputs)
    assert len(cases) >= 300
    only = os.environ.get("PA_CI_FUZZ_ONLY")  # a substring of case names, for debugging
    if only:
        cases = [c for c in cases if only in c.name]
    log = tmp_path / "results.jsonl"

    def run_from(start: int) -> None:
        before = _tree(inputs)
        with open(log, "a", buffering=1) as fh:
            for i in range(start, len(cases)):
                case = cases[i]
                fh.write(json.dumps({"i": i, "started": True}) + "\n")
                r = run(case.argv)
                problem = _problem(case, r, work)
                for p in list(work.iterdir()):  # the next case starts from an empty folder
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                after = _tree(inputs)
                if after != before and problem is None:
                    problem = f"changed the inputs folder: {sorted(set(after) ^ set(before))[:5]}"
                before = after
                fh.write(json.dumps({"i": i, "problem": problem, "code": r.code}) + "\n")

    problems: list[str] = []
    n_ok, start = 0, 0

    def report(i: int, problem: str | None) -> None:
        name = cases[i].name
        if name in KNOWN:
            if problem is None:
                problem = f"passes now; remove it from KNOWN ({KNOWN[name][:60]}...)"
            else:
                return
        if problem is not None:
            problems.append(f"{name}: {problem}  [pa-ci {' '.join(cases[i].argv)}]")
    while start < len(cases):
        status = _forked(lambda: run_from(start))
        done = {}
        last_started = start - 1
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("started"):
                last_started = max(last_started, rec["i"])
            else:
                done[rec["i"]] = rec
        for i in sorted(k for k in done if k >= start):
            rec = done[i]
            n_ok += rec["code"] == 0
            report(i, rec["problem"])
        if status == 0:
            break
        died = last_started if last_started not in done else max(done, default=start - 1) + 1
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit {os.WEXITSTATUS(status)}")
        report(died, f"the process died ({how})")
        for p in list(work.iterdir()):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        start = died + 1
    assert not problems, f"{len(problems)} of {len(cases)} cases ({n_ok} succeeded):\n" + "\n".join(problems)
