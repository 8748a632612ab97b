"""Make ``pa_ci/bundled/``: the small default speech + noise set that ships with pa-ci.

Reads the shared data collection (default ``../shared/data`` beside the project root) and writes

- ``speech/librispeech/test-other/``: the 5 shortest utterances of each test-other speaker
  (byte-identical FLAC copies; ties broken by file name),
- ``speech/cmu_arctic/``: all CMU ARCTIC WAVs (byte-identical copies),
- ``speech/MANIFEST.tsv``: the rows of the shared manifest for exactly these files,
- ``noise/*.flac``: every noise recording cut to its first 20 s (16-bit FLAC, mono, 16 kHz;
  the samples are copied as integers, so the kept part is bit-exact), shorter files kept whole,
- ``noise/MANIFEST.tsv``: the shared noise manifest with duration and modifications updated,
- the licence and attribution files the licences require (see ``SOURCES.md`` it writes).

``train-clean-100`` is never read: it is held out for the final evaluation.

Usage: ``python examples/make_bundled_subset.py [--source DIR] [--dest DIR]``. The output is
reproducible: running it twice gives the same audio samples and the same text files.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data"
DEFAULT_DEST = ROOT / "pa_ci" / "bundled"

UTTERANCES_PER_SPEAKER = 5      # the 5 shortest test-other utterances of each speaker
NOISE_SECONDS = 20.0            # noise recordings are cut to their first 20 s
HELD_OUT = "train-clean-100"    # never bundled, never read here


def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        return list(reader.fieldnames or []), list(reader)


def _write_tsv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def select_speech(source: Path) -> list[str]:
    """Relative paths (as in speech/MANIFEST.tsv) of the speech files to bundle."""
    speech = source / "speech"
    by_speaker: dict[str, list[tuple[float, str]]] = {}
    for path in sorted((speech / "librispeech" / "test-other").glob("*.flac")):
        info = sf.info(str(path))
        speaker = path.stem.split("-")[0]
        by_speaker.setdefault(speaker, []).append((info.frames / info.samplerate, path.name))
    chosen = []
    for speaker in sorted(by_speaker, key=int):
        shortest = sorted(by_speaker[speaker])[:UTTERANCES_PER_SPEAKER]
        chosen += [f"librispeech/test-other/{name}" for _, name in sorted(shortest, key=lambda t: t[1])]
    chosen += [f"cmu_arctic/{p.name}" for p in sorted((speech / "cmu_arctic").glob("*.wav"))]
    assert not any(HELD_OUT in c for c in chosen)
    return chosen


def make_speech(source: Path, dest: Path) -> list[str]:
    chosen = select_speech(source)
    columns, rows = _read_tsv(source / "speech" / "MANIFEST.tsv")
    by_file = {row["file"]: row for row in rows}
    missing = [c for c in chosen if c not in by_file]
    if missing:
        raise SystemExit(f"not in speech/MANIFEST.tsv: {missing}")
    for rel in chosen:
        _copy(source / "speech" / rel, dest / "speech" / rel)
    _write_tsv(dest / "speech" / "MANIFEST.tsv", columns, [by_file[c] for c in chosen])
    for rel in ("librispeech/LICENSE.TXT", "librispeech/SPEAKERS.TXT",
                "librispeech/CC-BY-4.0_legalcode.txt", "cmu_arctic/LICENSE.txt",
                "cmu_arctic/pyroomacoustics_input_samples_README.md"):
        if (source / "speech" / rel).exists():
            _copy(source / "speech" / rel, dest / "speech" / rel)
    return chosen


def make_noise(source: Path, dest: Path) -> list[dict[str, str]]:
    columns, rows = _read_tsv(source / "noise" / "MANIFEST.tsv")
    out_rows = []
    for row in rows:
        src = source / "noise" / row["file"]
        x, fs = sf.read(str(src), dtype="int16", always_2d=False)
        if x.ndim != 1 or fs != 16000:
            raise SystemExit(f"{src}: expected mono 16 kHz, got shape {x.shape} at {fs} Hz")
        keep = int(round(NOISE_SECONDS * fs))
        cut = x.size > keep
        x = x[:keep]
        dst = dest / "noise" / row["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(dst), x, fs, subtype="PCM_16", format="FLAC")
        new = dict(row)
        new["duration_s"] = f"{x.size / fs:.3f}"
        new["modifications"] = (row["modifications"] + "; first 20 s kept (pa-ci bundled subset)"
                                if cut else row["modifications"] + "; kept whole (shorter than 20 s)")
        out_rows.append(new)
    _write_tsv(dest / "noise" / "MANIFEST.tsv", columns, out_rows)
    for sub in ("licenses", "berlin_noise_metadata"):
        for path in sorted((source / "noise" / sub).iterdir()):
            _copy(path, dest / "noise" / sub / path.name)
    return out_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="the shared data folder (default: %(default)s)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                        help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    source, dest = args.source.resolve(), args.dest.resolve()
    for sub in ("speech", "noise"):
        if (dest / sub).exists():
            shutil.rmtree(dest / sub)
    speech = make_speech(source, dest)
    noise = make_noise(source, dest)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{len(speech)} speech files, {len(noise)} noise files, {size / 1e6:.2f} MB in {dest}")
    print("SOURCES.md is maintained by hand beside them; check it still matches.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
