"""Own data end to end: `pa-ci dataset build` on a TIMIT-like tree, then --dataset everywhere.

The tree is written here (NIST SPHERE ``.WAV`` files in ``TRAIN/DR1/SPEAKER/``, cut from the
bundled speech), so the test needs no corpus. Nothing here reads ../shared/data (its
LibriSpeech train-clean-100 is held out).
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pa_ci.chain.audio import read_audio
from pa_ci.data.dataset import load_dataset
from pa_ci.errors import DataError
from pa_ci.codec.model_file import load_model
from pa_ci.experiment.protocol import JobContext

BUNDLED = Path(__file__).resolve().parents[1] / "pa_ci" / "bundled"
FS = 16000
#: TIMIT-like speaker folders, each cut from one bundled LibriSpeech file (two 2.5 s pieces).
SOURCES = {
    "FAKS0": "librispeech/test-other/1998-15444-0003.flac",
    "MDAB0": "librispeech/test-other/2033-164914-0001.flac",
    "FJEM0": "librispeech/test-other/2609-156975-0005.flac",
    "MREB0": "librispeech/test-other/3080-5032-0005.flac",
}
PIECES = ((0.3, "SA1"), (3.3, "SX107"))
SECONDS = 2.5


def write_sphere(path: Path, x: np.ndarray, fs: int = FS) -> None:
    """A NIST SPHERE file as TIMIT has them: 1024-byte NIST_1A header, int16 little endian."""
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    fields = ["NIST_1A", "   1024", f"sample_count -i {pcm.size}", f"sample_rate -i {fs}",
              "channel_count -i 1", "sample_n_bytes -i 2", "sample_coding -s3 pcm",
              "sample_byte_format -s2 01", "end_head"]
    head = ("\n".join(fields) + "\n").encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head.ljust(1024, b" ") + pcm.tobytes())


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """The tree, a noise folder, and two datasets built from them through the CLI."""
    root = tmp_path_factory.mktemp("own")
    tree = root / "timit"
    for speaker, rel in SOURCES.items():
        x, fs = read_audio(BUNDLED / "speech" / rel)
        assert fs == FS
        for start, name in PIECES:
            a = int(start * FS)
            write_sphere(tree / "TRAIN" / "DR1" / speaker / f"{name}.WAV", x[a:a + int(SECONDS * FS)])
    noise = root / "noise"
    noise.mkdir()
    shutil.copy(BUNDLED / "noise" / "train.flac", noise / "train.flac")
    return {"root": root, "tree": tree, "noise": noise}


def build(run_cli, own, out: Path, *extra: str) -> dict:
    r = run_cli("dataset", "build", "--speech", own["tree"], "--noise", own["noise"],
                "--n-train", "4", "--n-test", "4", "--out", out, "--json", *extra)
    assert r.code == 0, r.err
    return r.json()


def test_sphere_tree_reads_back(own) -> None:
    files = sorted(own["tree"].rglob("*.WAV"))
    assert len(files) == 8 and files[0].read_bytes()[:8] == b"NIST_1A\n"
    x, fs = read_audio(files[0])
    assert fs == FS and x.size == int(SECONDS * FS)


def test_build_train_prune_eval_on_own_data(run_cli, own, tmp_path) -> None:
    cache = tmp_path / "cache"
    d = build(run_cli, own, cache)
    folder, key = Path(d["path"]), d["key"]
    assert folder == (cache / "datasets" / key).resolve() and (folder / "manifest.json").is_file()
    assert d["train"]["items"] == 4 and d["test"]["items"] == 4
    speakers = set(d["train"]["speaker_ids"]) | set(d["test"]["speaker_ids"])
    assert speakers == set(SOURCES) and not set(d["train"]["speaker_ids"]) & set(d["test"]["speaker_ids"])
    text = run_cli("dataset", "build", "--speech", own["tree"], "--noise", own["noise"],
                   "--n-train", "4", "--n-test", "4", "--out", cache)
    assert text.code == 0 and f"--dataset {folder}" in text.out      # says what to pass on
    assert "dataset:" not in text.err                                # cached: not rebuilt

    # train: the cache folder holding one dataset is accepted as well as the dataset folder
    run = tmp_path / "run"
    r = run_cli("train", "--dataset", cache, "-o", run, "--iters", "2", "--warm-start", "5",
                "--batch-size", "2", "--json")
    assert r.code == 0, r.err
    t = r.json()
    assert t["dataset"]["key"] == key and t["dataset"]["n_train"] == 4
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["key"] == key and config["dataset"]["path"] == str(folder)
    assert config["dataset"]["n_train"] == 4 and config["dataset"]["n_test"] == 4
    assert load_model(run / "model.npz").meta["dataset"] == {"key": key, "n_train": 4, "n_test": 4}

    # prune the trained model on the same data
    pruned = tmp_path / "pruned"
    p = run_cli("prune", run / "model.npz", "--dataset", folder, "--rate", "0.5", "--scope",
                "decoder", "--pa-iters", "1", "--finetune-iters", "1", "--batch-size", "2",
                "-o", pruned, "--json")
    assert p.code == 0, p.err
    res = p.json()
    assert res["dataset"]["key"] == key and res["eval_items"] == 4 and res["train_items"] == 4
    assert json.loads((pruned / "result.json").read_text())["dataset"]["key"] == key
    assert json.loads((pruned / "run.json").read_text())["dataset"]["key"] == key
    assert load_model(pruned / "model.npz").meta["dataset"]["key"] == key
    assert json.loads((pruned / "finetune" / "config.json").read_text())["dataset"]["key"] == key

    # eval says which dataset it scored on, and that the model was trained on it
    e = run_cli("eval", pruned, "--dataset", folder, "--json")
    assert e.code == 0, e.err
    ev = e.json()
    assert ev["dataset"]["key"] == key and ev["trained_on"]["key"] == key
    assert ev["same_dataset"] is True and ev["n_items"] == 4
    e_text = run_cli("eval", pruned, "--dataset", folder)
    assert key in e_text.out and "trained on the same dataset" in e_text.out

    # another dataset of the same files (another seed) in the same cache
    other = build(run_cli, own, cache, "--seed", "1")
    assert other["key"] != key
    amb = run_cli("train", "--dataset", cache, "-o", tmp_path / "amb", "--iters", "1")
    assert amb.code == 1 and len(amb.err.strip().splitlines()) == 1
    assert "holds 2 datasets" in amb.err and key in amb.err and other["key"] in amb.err
    assert not (tmp_path / "amb").exists()

    e2 = run_cli("eval", pruned, "--dataset", other["path"], "--json").json()
    assert e2["dataset"]["key"] == other["key"] and e2["trained_on"]["key"] == key
    assert e2["same_dataset"] is False
    e2_text = run_cli("eval", pruned, "--dataset", other["path"]).out
    assert f"trained on another dataset, {key}" in e2_text

    # resuming with the other dataset: one error line naming both keys, nothing changed
    before = (run / "config.json").read_text()
    for argv in (("train", "--dataset", other["path"], "-o", run, "--iters", "3",
                  "--warm-start", "5", "--batch-size", "2", "--resume"),
                 ("prune", run / "model.npz", "--dataset", other["path"], "--rate", "0.5",
                  "--scope", "decoder", "--pa-iters", "1", "--finetune-iters", "1",
                  "--batch-size", "2", "-o", pruned, "--resume")):
        bad = run_cli(*argv)
        assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1, bad.err
        assert key in bad.err and other["key"] in bad.err and "Traceback" not in bad.err
    assert (run / "config.json").read_text() == before
    # ... while the same dataset resumes (the finished prune run returns its result)
    again = run_cli("prune", run / "model.npz", "--dataset", cache / "datasets" / key, "--rate",
                    "0.5", "--scope", "decoder", "--pa-iters", "1", "--finetune-iters", "1",
                    "--batch-size", "2", "-o", pruned, "--resume", "--json")
    assert again.code == 0, again.err
    assert again.json()["vstoi_finetuned"] == res["vstoi_finetuned"]


def test_sweep_sensitivity_and_schedule_record_the_dataset(run_cli, own, tmp_path) -> None:
    d = build(run_cli, own, tmp_path / "cache")
    folder, key = Path(d["path"]), d["key"]
    sweep = tmp_path / "sweep"
    argv = ("sweep", "--dataset", folder, "--rates", "0.5", "--scopes", "decoder", "--methods",
            "magnitude", "--pa-iters", "1", "--finetune-iters", "0", "--batch-size", "2",
            "--out", sweep)
    s = run_cli(*argv, "--json")
    assert s.code == 0, s.err
    assert s.json()["dataset"]["key"] == key
    job = json.loads((sweep / "sweep.json").read_text())["job"]
    assert job["dataset"] == {"key": key, "n_train": 4, "n_test": 4}
    rows = list(csv.DictReader((sweep / "results.csv").open()))
    assert len(rows) == 1 and rows[0]["dataset_key"] == key
    run_json = json.loads(next((sweep / "runs").glob("*/run.json")).read_text())
    assert run_json["dataset"]["key"] == key

    other = build(run_cli, own, tmp_path / "cache2", "--seed", "1")
    bad = run_cli(*argv[:2], other["path"], *argv[3:])
    assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1
    assert key in bad.err and other["key"] in bad.err

    sens = run_cli("sensitivity", "--dataset", folder, "--range", "0", "0.5", "0.5", "--tensors",
                   "dec.out.W", "--out", tmp_path / "sens", "--json")
    assert sens.code == 0, sens.err
    assert json.loads((tmp_path / "sens" / "config.json").read_text())["dataset"]["key"] == key

    yaml = tmp_path / "s.yaml"
    yaml.write_text("version: 1\npruners:\n  p:\n    class: SparsityLevelParameterPruner\n"
                    "    levels:\n      dec.out.W: 0.5\npolicies:\n  - pruner: {instance_name: p}\n"
                    "    epochs: [0]\n")
    sched = tmp_path / "sched"
    r = run_cli("prune", "--schedule", yaml, "--epoch-iters", "1", "--batch-size", "2",
                "--dataset", folder, "-o", sched, "--json")
    assert r.code == 0, r.err
    assert r.json()["dataset"]["key"] == key
    assert json.loads((sched / "run.json").read_text())["dataset"]["key"] == key
    assert load_model(sched / "model.npz").meta["dataset"]["key"] == key
    resumed = run_cli("prune", "--schedule", yaml, "--epoch-iters", "1", "--batch-size", "2",
                      "--dataset", other["path"], "-o", sched, "--resume")
    assert resumed.code == 1 and key in resumed.err and other["key"] in resumed.err


def test_worker_refuses_a_dataset_of_another_key(run_cli, own, tmp_path) -> None:
    d = build(run_cli, own, tmp_path / "cache")
    shipped = BUNDLED / "models" / "frae-default.npz"
    job = JobContext.from_model_file(shipped, dataset_path=d["path"], dataset_key=d["key"])
    assert job.dataset().key == d["key"] and job.describe()["dataset"]["key"] == d["key"]
    wrong = JobContext.from_model_file(shipped, dataset_path=d["path"], dataset_key="0" * 32)
    with pytest.raises(DataError, match=f"holds dataset {d['key']}.*{'0' * 32}"):
        wrong.dataset()
    gone = JobContext.from_model_file(shipped, dataset_path=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere.*the path the sweep was given"):
        gone.dataset()
    assert load_dataset(d["path"]).key == d["key"]


@pytest.mark.parametrize("case", ["empty", "file", "missing", "tiny"])
def test_bad_dataset_option_is_one_error_line_and_creates_nothing(run_cli, tmp_path, case) -> None:
    target = tmp_path / "given"
    if case == "empty":
        target.mkdir()
    elif case == "file":
        target.write_text("not a dataset")
    extra = ("--tiny",) if case == "tiny" else ()
    if case == "tiny":
        target.mkdir()
    for argv in (("train", "-o", tmp_path / "run", "--iters", "1"),
                 ("prune", "--rate", "0.5", "-o", tmp_path / "run"),
                 ("eval",),
                 ("sensitivity", "--out", tmp_path / "run"),
                 ("sweep", "--rates", "0.5", "--out", tmp_path / "run")):
        r = run_cli(*argv, "--dataset", target, *extra)
        assert r.code == (2 if case == "tiny" else 1), (argv, r.err)  # usage / runtime error
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.err
        assert ("--tiny" in lines[0]) if case == "tiny" else (str(target) in lines[0])
        assert not (tmp_path / "run").exists()


def test_planned_record_matches_the_built_dataset(run_cli, own, tmp_path) -> None:
    from pa_ci.data.dataset import DatasetConfig, planned_record
    d = build(run_cli, own, tmp_path / "cache")
    config = DatasetConfig(speech_dir=own["tree"], noise_dir=own["noise"], n_train=4, n_test=4)
    assert planned_record(config, tmp_path / "cache") == {"key": d["key"], "n_train": 4, "n_test": 4}


def test_dask_workers_load_the_dataset_folder(run_cli, own, tmp_path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    d = build(run_cli, own, tmp_path / "cache")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        r = run_cli("sweep", "--dataset", d["path"], "--scheduler", cluster.scheduler_address,
                    "--rates", "0.5", "--scopes", "decoder", "--methods", "magnitude",
                    "--pa-iters", "1", "--finetune-iters", "0", "--out", tmp_path / "sweep",
                    "--json")
        assert r.code == 0, r.err
        rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open()))
        assert [row["dataset_key"] for row in rows] == [d["key"]]
