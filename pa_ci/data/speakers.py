"""The speaker of a speech file, the rule a speaker-disjoint split rests on (paper §III-A).

The speaker of a file (:func:`speaker_of`), first rule that applies:

a. a ``MANIFEST.tsv`` (tab-separated, columns ``file`` and ``speaker_id``) in the file's folder
   or any folder above it that lists the file (``file`` relative to the manifest's folder);
   the nearest such manifest wins, and ``speaker_id`` values ``""``/``"-"`` do not count;
b. a LibriSpeech name ``SPEAKER-CHAPTER-UTTERANCE.ext`` gives ``librispeech-SPEAKER``
   (the convention of the shared manifests);
c. otherwise the name of the folder holding the file (TIMIT: ``.../DR1/FCJF0/SA1.WAV`` ->
   ``FCJF0``). Files directly in one folder therefore count as one speaker.

:func:`scan_speech` lists the speech files of a folder (recursive; suffixes of
:data:`pa_ci.chain.audio.AUDIO_SUFFIXES` in any case) with their speakers.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..chain.audio import AUDIO_SUFFIXES
from ..chain.noise import audio_files
from ..errors import DataError

MANIFEST_NAME = "MANIFEST.tsv"
_LIBRISPEECH_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")


class _Manifests:
    """Reads MANIFEST.tsv files once each: folder -> {relative file: speaker_id}."""

    def __init__(self) -> None:
        self._by_dir: dict[Path, dict[str, str] | None] = {}

    def lookup(self, folder: Path) -> dict[str, str] | None:
        if folder not in self._by_dir:
            path = folder / MANIFEST_NAME
            table = None
            if path.is_file():
                try:
                    with path.open(newline="", encoding="utf-8") as f:
                        reader = csv.DictReader(f, delimiter="\t")
                        if reader.fieldnames and {"file", "speaker_id"} <= set(reader.fieldnames):
                            table = {row["file"].strip(): (row["speaker_id"] or "").strip()
                                     for row in reader if row.get("file")}
                except (OSError, UnicodeDecodeError, csv.Error) as exc:
                    raise DataError(f"{path}: cannot be read as a tab-separated manifest ({exc})") from None
            self._by_dir[folder] = table
        return self._by_dir[folder]


def speaker_of(path: str | os.PathLike, manifests: _Manifests | None = None) -> str:
    """Speaker id of a speech file by the rules of the module docstring (manifest, LibriSpeech
    name, folder name)."""
    path = Path(path).absolute()
    manifests = manifests or _Manifests()
    for folder in path.parents:
        table = manifests.lookup(folder)
        if table:
            speaker = table.get(path.relative_to(folder).as_posix(), "")
            if speaker and speaker != "-":
                return speaker
    match = _LIBRISPEECH_NAME.match(path.stem)
    if match:
        return f"librispeech-{int(match.group(1))}"
    return path.parent.name


@dataclass(frozen=True)
class _Utterance:
    """A speech file: its path, its path below the speech folder ('/'-separated), its speaker."""

    path: Path
    rel: str
    speaker: str


def scan_speech(speech_dir: str | os.PathLike) -> list[_Utterance]:
    """Speech files under ``speech_dir`` with their speakers, sorted by relative path."""
    root = Path(speech_dir)
    files = audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}); expected speech recordings")
    manifests = _Manifests()
    return [_Utterance(p, p.relative_to(root).as_posix(), speaker_of(p, manifests)) for p in files]
