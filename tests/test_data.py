"""pa_ci.data: speakers, split, mixing, the cache, errors, and the tiny dataset on the bundled data."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import BUNDLED, speechlike
from hypothesis import given, settings
from hypothesis import strategies as st

import importlib
from pa_ci.data import cache as data_cache
from pa_ci.data import mixing as data_mixing
from pa_ci.data import plan as data_plan

ACE = importlib.import_module("pa_ci.chain.ace")
from pa_ci.data.cache import dataset_key
from pa_ci.data.dataset import DatasetConfig, build_dataset, default_config, load_dataset
from pa_ci.data.mixing import dataset_noises, load_speech, make_mixture, noise_segment, snr_db
from pa_ci.data.speakers import scan_speech, speaker_of
from pa_ci.errors import DataError, ParameterError

FS = 16000


# --------------------------------------------------------------------------- helpers
def make_speech_folder(root: Path, n_speakers: int = 4, per_speaker: int = 2, seconds: float = 2.0,
                       fs_of: dict[int, int] | None = None) -> Path:
    """TIMIT-like layout DR1/SPKn/SAm.wav of speech-like test signals (speaker = folder name)."""
    fs_of = fs_of or {}
    for s in range(n_speakers):
        folder = root / "DR1" / f"SPK{s}"
        folder.mkdir(parents=True, exist_ok=True)
        for u in range(per_speaker):
            fs = fs_of.get(s, FS)
            x = speechlike(seconds, fs, seed=100 * s + u)
            sf.write(folder / f"SA{u}.wav", x, fs, subtype="PCM_16")
    return root


def make_noise_folder(root: Path, seconds: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    x = 0.05 * np.random.default_rng(5).standard_normal(int(seconds * FS))
    sf.write(root / "hum.wav", x, FS, subtype="PCM_16")
    return root


def small_config(tmp_path: Path, **changes) -> DatasetConfig:
    speech = make_speech_folder(tmp_path / "speech")
    noise = make_noise_folder(tmp_path / "noise")
    fields = dict(speech_dir=speech, noise_dir=noise, n_train=4, n_test=None, mixtures_per_utterance=1)
    fields.update(changes)
    return DatasetConfig(**fields)


def count_ace_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = ACE.ace

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ACE, "ace", counting)
    return calls


def arrays_equal(a, b) -> bool:
    return all(np.array_equal(x.clean, y.clean) and np.array_equal(x.mixture, y.mixture)
               and np.array_equal(x.pattern, y.pattern) and x.metadata() == y.metadata()
               for x, y in zip(a.train + a.test, b.train + b.test, strict=True))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny default dataset on the bundled data, built once into a fresh cache."""
    cache = tmp_path_factory.mktemp("cache")
    calls: list[tuple[int, int]] = []
    ds = build_dataset(default_config(tiny=True), cache_dir=cache,
                       progress=lambda done, total, *info: calls.append((done, total)))
    return ds, cache, calls


# --------------------------------------------------------------------------- speakers, scanning
def test_speaker_rules(tmp_path):
    a = tmp_path / "a"
    (a / "x").mkdir(parents=True)
    (a / "MANIFEST.tsv").write_text("file\tspeaker_id\nx/1.wav\tS1\nx/2.wav\t-\n3.wav\tS3\n")
    assert speaker_of(a / "x" / "1.wav") == "S1"
    assert speaker_of(a / "3.wav") == "S3"
    assert speaker_of(a / "x" / "2.wav") == "x"                      # '-' does not count: folder rule
    (a / "x" / "MANIFEST.tsv").write_text("file\tspeaker_id\n1.wav\tS9\n")
    assert speaker_of(a / "x" / "1.wav") == "S9"                     # the nearest manifest wins
    assert speaker_of(tmp_path / "ls" / "1688-142285-0002.flac") == "librispeech-1688"
    assert speaker_of(tmp_path / "TIMIT" / "TRAIN" / "DR1" / "FCJF0" / "SA1.WAV") == "FCJF0"
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "MANIFEST.tsv").write_text("file\tcategory\n1.wav\tbabble\n")  # no speaker_id
    assert speaker_of(tmp_path / "n" / "1.wav") == "n"


def test_bundled_speakers():
    utts = scan_speech(BUNDLED / "speech")
    assert len(utts) == 56
    speakers = {u.speaker for u in utts}
    assert len(speakers) == 12
    assert {"cmu_arctic-aew", "cmu_arctic-axb", "librispeech-1688"} <= speakers
    assert not any("train-clean-100" in u.rel for u in utts)      # held out, never bundled
    # The manifest above the folder and the LibriSpeech name rule agree.
    sub = scan_speech(BUNDLED / "speech" / "librispeech" / "test-other")
    assert {u.speaker for u in sub} == {s for s in speakers if s.startswith("librispeech")}


def test_scan_is_case_insensitive_and_recursive(tmp_path):
    make_speech_folder(tmp_path, n_speakers=1, per_speaker=1)
    src = tmp_path / "DR1" / "SPK0" / "SA0.wav"
    src.rename(src.with_name("SA0.WAV"))
    utts = scan_speech(tmp_path)
    assert [u.rel for u in utts] == ["DR1/SPK0/SA0.WAV"] and utts[0].speaker == "SPK0"


# --------------------------------------------------------------------------- plan / split
def test_plan_is_deterministic_and_speaker_disjoint():
    config = default_config()
    utts, _, names = data_plan._inputs(config)
    p0 = data_plan._plan(config, utts, names)
    assert data_plan._plan(config, utts, names) == p0
    assert len(p0.train) == 100
    assert len(p0.train_speakers) == len(p0.test_speakers) == 6
    assert not set(p0.train_speakers) & set(p0.test_speakers)
    test_utts = [u for u in utts if u.speaker in set(p0.test_speakers)]
    assert len(p0.test) == 4 * len(test_utts)                      # all test candidates
    assert {utts[c.utt].speaker for c in p0.train} <= set(p0.train_speakers)
    assert {utts[c.utt].speaker for c in p0.test} <= set(p0.test_speakers)
    lo, hi = config.snr_range_db
    assert all(lo <= c.snr_db <= hi for c in p0.train + p0.test)
    assert {c.noise for c in p0.train + p0.test} == set(names)
    p1 = data_plan._plan(DatasetConfig(seed=1), utts, names)
    assert p1 != p0
    for seed in range(30):   # the bundled data always supplies 100 train items
        p = data_plan._plan(DatasetConfig(seed=seed), utts, names)
        assert len(p.train) == 100 and not set(p.train_speakers) & set(p.test_speakers)


def test_n_test_takes_a_seeded_subset():
    config = DatasetConfig(n_test=10)
    utts, _, names = data_plan._inputs(config)
    p = data_plan._plan(config, utts, names)
    assert len(p.test) == 10 and p == data_plan._plan(config, utts, names)


# --------------------------------------------------------------------------- mixing
@settings(max_examples=40, deadline=None)
@given(snr=st.floats(-5.0, 40.0), seed=st.integers(0, 2 ** 16), n=st.integers(100, 5000))
def test_make_mixture_hits_the_snr(snr, seed, n):
    rng = np.random.default_rng(seed)
    s = speechlike(n / FS + 0.01, FS, seed)[:n] + 1e-3
    v = noise_segment(rng.standard_normal(777), int(rng.integers(777)), n)
    mixture, g = make_mixture(s, v, snr)
    assert abs(snr_db(s, mixture) - snr) < 1e-6
    np.testing.assert_allclose(mixture - s, g * v, rtol=0, atol=1e-12)


def test_noise_segment_tiles():
    noise = np.arange(5.0)
    np.testing.assert_array_equal(noise_segment(noise, 3, 8), [3, 4, 0, 1, 2, 3, 4, 0])
    np.testing.assert_array_equal(noise_segment(noise, 0, 3), [0, 1, 2])


# --------------------------------------------------------------------------- the tiny dataset
def test_tiny_dataset_on_bundled_data(tiny):
    ds, cache, calls = tiny
    assert len(ds.train) == 8 and len(ds.test) == 8
    assert ds.path == cache / "datasets" / ds.key and (ds.path / "manifest.json").is_file()
    train_spk = {it.speaker for it in ds.train}
    test_spk = {it.speaker for it in ds.test}
    assert not train_spk & test_spk
    assert len(ds.noise_types) == 8 and "ccitt" in ds.noise_types
    ids = [it.id for it in ds.train + ds.test]
    assert len(set(ids)) == len(ids)
    for it in ds.train + ds.test:
        assert it.clean.dtype == it.mixture.dtype == it.pattern.dtype == np.float32
        assert it.clean.shape == it.mixture.shape and it.clean.size <= 4 * FS
        assert it.pattern.shape == (-(-it.clean.size // 18), 22)
        assert np.all((it.pattern >= 0) & (it.pattern <= 1))
        assert np.count_nonzero(it.pattern, axis=1).max() <= 8
        assert 0.0 < it.reference_vstoi < 1.0
        assert -5.0 <= it.snr_db <= 40.0
        assert abs(snr_db(it.clean, it.mixture) - it.snr_db) < 1e-3    # float32 storage
        rms = np.sqrt(np.mean(it.mixture.astype(np.float64) ** 2))
        assert rms == pytest.approx(0.022361, rel=1e-4)                  # 65 dB SPL (ACE level)
    s = ds.summary()
    assert s["train"]["items"] == 8 and s["test"]["items"] == 8
    assert s["train"]["speakers"] == len(train_spk)
    for split in ("train", "test"):
        refs = [it.reference_vstoi for it in ds.split(split)]
        assert s[split]["reference_vstoi_mean"] == pytest.approx(np.mean(refs))
        assert s[split]["reference_vstoi_min"] == min(refs)
        assert s[split]["reference_vstoi_max"] == max(refs)
        assert s[split]["seconds"] == pytest.approx(sum(it.seconds for it in ds.split(split)))
    json.dumps(s)
    assert calls[0] == (0, 16) and calls[-1] == (16, 16) and len(calls) == 17


def test_tiny_items_reproduce_from_their_metadata(tiny):
    """Mixing in float64 from the recorded metadata gives the drawn SNR to 1e-6 dB and the stored arrays."""
    ds, _, _ = tiny
    config = ds.config
    noises = dataset_noises(config)
    for it in ds.train + ds.test:
        s = load_speech(Path(config.speech_dir) / it.speech_file, config.max_seconds)
        seg = noise_segment(noises[it.noise], it.noise_offset, s.size)
        mixture, g = make_mixture(s, seg, it.snr_db)
        assert abs(snr_db(s, mixture) - it.snr_db) < 1e-6
        scale = it.noise_gain / g
        np.testing.assert_allclose(it.clean, s * scale, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(it.mixture, mixture * scale, rtol=1e-6, atol=1e-9)


def test_tiny_reference_vstoi_matches_the_chain(tiny):
    """The stored pattern is ACE of the stored mixture; the reference is pystoi of the vocoded pattern."""
    from pystoi import stoi as pystoi_stoi

    from pa_ci.chain.vocoder import vocode
    ds, _, _ = tiny
    for it in (ds.train[0], ds.test[0]):
        pattern = ACE.ace(it.mixture.astype(np.float64), FS)
        assert np.abs(pattern - it.pattern).max() < 1e-4
        clean = it.clean.astype(np.float64)
        oracle = pystoi_stoi(clean, vocode(it.pattern)[:clean.size], FS)
        assert it.reference_vstoi == pytest.approx(oracle, abs=1e-5)


def test_second_build_loads_from_the_cache(tiny, monkeypatch):
    ds, cache, _ = tiny

    def no_ace(*args, **kwargs):
        raise AssertionError("ace called: the cache was not used")

    monkeypatch.setattr(ACE, "ace", no_ace)
    progress: list = []
    again = build_dataset(default_config(tiny=True), cache_dir=cache, progress=lambda *a: progress.append(a))
    assert again.key == ds.key and again.path == ds.path and arrays_equal(ds, again)
    assert progress == []
    assert arrays_equal(ds, load_dataset(ds.path))


def test_rebuild_in_a_new_cache_is_identical(tiny, tmp_path):
    ds, _, _ = tiny
    other = build_dataset(default_config(tiny=True), cache_dir=tmp_path)
    assert other.key == ds.key and other.path != ds.path
    assert arrays_equal(ds, other)


def test_env_var_sets_the_default_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PA_CI_CACHE", str(tmp_path / "c"))
    assert data_cache.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PA_CI_CACHE")
    assert data_cache.default_cache_dir() == Path.home() / ".cache" / "pa-ci"


# --------------------------------------------------------------------------- custom folders
def test_custom_folder_resamples_tiles_and_splits(tmp_path):
    config = small_config(tmp_path, n_train=3)
    shutil.rmtree(tmp_path / "speech")
    make_speech_folder(tmp_path / "speech", fs_of={1: 8000, 2: 44100})
    ds = build_dataset(config, cache_dir=tmp_path / "cache")
    assert len(ds.train) == 3 and len(ds.test) == 4                  # 2 of 4 speakers, 2 utterances each
    assert not {i.speaker for i in ds.train} & {i.speaker for i in ds.test}
    assert all(it.clean.size == 2 * FS for it in ds.train + ds.test)   # 8 and 44.1 kHz resampled
    noises = dataset_noises(config)
    assert noises["hum"].size == FS                                   # shorter than the speech: tiled
    for it in ds.train + ds.test:
        assert 0 <= it.noise_offset < noises[it.noise].size
        s = load_speech(Path(config.speech_dir) / it.speech_file)
        mixture, g = make_mixture(s, noise_segment(noises[it.noise], it.noise_offset, s.size), it.snr_db)
        assert abs(snr_db(s, mixture) - it.snr_db) < 1e-6
        np.testing.assert_allclose(it.mixture, mixture * it.noise_gain / g, rtol=1e-6, atol=1e-9)


def test_key_follows_content_not_location(tmp_path):
    config = small_config(tmp_path)
    cache = tmp_path / "cache"
    key = dataset_key(config, cache)
    assert dataset_key(config, cache) == key                          # remembered hashes
    f = tmp_path / "speech" / "DR1" / "SPK0" / "SA0.wav"
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))                    # touched, same bytes
    assert dataset_key(config, cache) == key
    shutil.copytree(tmp_path / "speech", tmp_path / "moved")
    assert dataset_key(DatasetConfig(**{**vars(config), "speech_dir": tmp_path / "moved"}), cache) == key
    x, fs = sf.read(f)
    sf.write(f, 0.9 * x, fs, subtype="PCM_16")                        # changed content, same size
    assert dataset_key(config, cache) != key
    assert dataset_key(DatasetConfig(**{**vars(config), "seed": 1}), cache) != key
    assert dataset_key(DatasetConfig(**{**vars(config), "snr_range_db": (0, 10)}), cache) != key


def test_key_hashes_the_source_of_the_chain_and_data_modules(tmp_path, monkeypatch):
    hashes = data_cache._chain_code_hashes()
    package = Path(data_cache.__file__).resolve().parent.parent
    modules = {f"{sub}/{f.name}" for sub in data_cache.CHAIN_PACKAGES for f in (package / sub).glob("*.py")}
    assert set(hashes) == modules
    assert {"data/dataset.py", "data/cache.py", "data/mixing.py", "data/plan.py",
            "data/speakers.py"} <= modules and any(m.startswith("chain/") for m in modules)
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in hashes.values())
    config = small_config(tmp_path)
    cache = tmp_path / "cache"
    key = dataset_key(config, cache)
    assert re.fullmatch("[0-9a-f]{32}", key) and dataset_key(config, cache) == key
    # Another source of a data module (as its content hash shows it) is another dataset.
    mixing_source = Path(data_mixing.__file__).resolve()
    real_sha256 = data_cache._sha256_file
    monkeypatch.setattr(data_cache, "_sha256_file",
                        lambda path: "0" * 64 if Path(path).resolve() == mixing_source else real_sha256(path))
    assert data_cache._chain_code_hashes()["data/mixing.py"] == "0" * 64
    assert dataset_key(config, cache) != key


def test_changed_file_gives_a_new_dataset(tmp_path):
    config = small_config(tmp_path)
    cache = tmp_path / "cache"
    first = build_dataset(config, cache_dir=cache)
    f = tmp_path / "noise" / "hum.wav"
    x, fs = sf.read(f)
    sf.write(f, x[::-1], fs, subtype="PCM_16")
    second = build_dataset(config, cache_dir=cache)
    assert second.key != first.key and second.path.is_dir() and first.path.is_dir()


# --------------------------------------------------------------------------- errors
def test_error_empty_or_missing_speech_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    noise = make_noise_folder(tmp_path / "noise")
    with pytest.raises(DataError, match="no audio files"):
        build_dataset(DatasetConfig(speech_dir=tmp_path / "empty", noise_dir=noise), cache_dir=tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        build_dataset(DatasetConfig(speech_dir=tmp_path / "nope", noise_dir=noise), cache_dir=tmp_path)


def test_error_one_speaker(tmp_path):
    speech = make_speech_folder(tmp_path / "speech", n_speakers=1, per_speaker=3)
    noise = make_noise_folder(tmp_path / "noise")
    with pytest.raises(DataError, match="1 speaker"):
        build_dataset(DatasetConfig(speech_dir=speech, noise_dir=noise, n_train=1), cache_dir=tmp_path)


def test_error_too_few_items(tmp_path):
    with pytest.raises(DataError, match="fewer than n_train = 100"):
        build_dataset(small_config(tmp_path, n_train=100), cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="fewer than n_test = 50"):
        build_dataset(small_config(tmp_path, n_train=1, n_test=50), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "datasets").exists()


def test_error_noise_folder(tmp_path):
    config = small_config(tmp_path)
    (tmp_path / "nonoise").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        build_dataset(DatasetConfig(**{**vars(config), "noise_dir": tmp_path / "nonoise"}), cache_dir=tmp_path)
    shutil.copy(tmp_path / "noise" / "hum.wav", tmp_path / "noise" / "ccitt.wav")
    with pytest.raises(DataError, match="ccitt"):
        build_dataset(config, cache_dir=tmp_path)


def test_error_speech_too_short_for_stoi(tmp_path):
    config = small_config(tmp_path, max_seconds=0.2)
    with pytest.raises(DataError, match="STOI"):
        build_dataset(config, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("changes", [dict(n_train=0), dict(n_test=0), dict(snr_range_db=(10, 5)),
                                     dict(mixtures_per_utterance=0), dict(max_seconds=-1.0),
                                     dict(train_speaker_fraction=1.0), dict(seed=-1)])
def test_bad_config_values(changes):
    with pytest.raises(ParameterError):
        DatasetConfig(**changes)


def test_bad_ace_params():
    with pytest.raises(ParameterError, match="16000"):
        DatasetConfig(ace=ACE.AceParams(fs=8000)).ace_params()
    assert DatasetConfig(ace="default").ace_params() == ACE.AceParams()


def test_config_round_trips_through_json():
    config = DatasetConfig(seed=3, n_test=5, snr_range_db=(0, 20), ace="nmt5")
    again = DatasetConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict() and again.ace_params() == config.ace_params()


# --------------------------------------------------------------------------- cache robustness
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    config = small_config(tmp_path)
    cache = tmp_path / "cache"
    ds = build_dataset(config, cache_dir=cache)
    npz = ds.path / "arrays.npz"
    npz.write_bytes(npz.read_bytes()[:1000])                          # truncated
    with pytest.raises(DataError, match="corrupt"):
        load_dataset(ds.path)
    calls = count_ace_calls(monkeypatch)
    again = build_dataset(config, cache_dir=cache)
    assert len(calls) == len(ds.train) + len(ds.test)                 # rebuilt
    assert arrays_equal(ds, again)
    (again.path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt"):
        load_dataset(again.path)
    with pytest.raises(DataError, match="no manifest"):
        load_dataset(tmp_path)


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    config = small_config(tmp_path)
    cache = tmp_path / "cache"
    real = ACE.ace
    calls: list[int] = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ACE, "ace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(config, cache_dir=cache)
    assert not (cache / "datasets").exists() or not any((cache / "datasets").iterdir())
    monkeypatch.setattr(ACE, "ace", real)

    real_write = data_cache._write

    def half_written(dataset, speech, folder, key_doc):
        real_write(dataset, speech, folder, key_doc)
        (folder / "manifest.json").unlink()
        raise OSError("disk full")

    monkeypatch.setattr(data_cache, "_write", half_written)
    with pytest.raises(DataError, match="cannot write the dataset cache"):
        build_dataset(config, cache_dir=cache)
    assert list((cache / "datasets").iterdir()) == []                # no key folder, no temp folder
    monkeypatch.setattr(data_cache, "_write", real_write)
    ds = build_dataset(config, cache_dir=cache)
    assert [p.name for p in (cache / "datasets").iterdir()] == [ds.key]


def test_unwritable_cache_is_a_data_error(tmp_path):
    config = small_config(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(DataError, match="cannot write the dataset cache"):
        build_dataset(config, cache_dir=blocker)
