"""CLI and packaging conventions: help texts, one spelling for outputs, iteration options that
mean what they say, --quiet, strict JSON, the library façade, python -m pa_ci, py.typed."""
from __future__ import annotations

import configparser
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from pa_ci import cli as cli_module
from pa_ci.cli import cli, strict_json
from pa_ci.errors import PaCiError, ParameterError
from pa_ci.experiment.protocol import (PAPER_BASELINE_ITERS, RunSpec, protocol_spec, run_protocol)
from pa_ci.experiment.sweep import plan_runs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pa_ci"


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    """(path, command) of the group and every command below it."""
    yield prefix, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def help_text(path: tuple[str, ...], command: click.Command) -> str:
    with click.Context(command, info_name=" ".join(("pa-ci",) + path)) as ctx:
        return command.get_help(ctx)


# ----------------------------------------------------------------------------- help
def test_every_option_has_help_text():
    missing = [f"{' '.join(path) or 'pa-ci'} {param.opts[0]}"
               for path, command in commands() for param in command.params
               if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()]
    assert not missing, f"options without help: {missing}"


def test_gain_options_name_the_papers_symbols():
    text = " ".join(help_text(("prune",), cli.commands["prune"]).split())
    assert "Spall's alpha; the paper's gamma" in text and "Spall's gamma; the paper's beta" in text
    for default in ("1.0", "10273.0", "0.020765", "0.602", "0.101"):
        assert f"[default: {default}]" in text


def test_help_names_no_file_that_is_not_shipped():
    texts = {" ".join(path) or "pa-ci": help_text(path, c) for path, c in commands()}
    for name, text in texts.items():
        flat = " ".join(text.split())
        for doc in re.findall(r"[\w./-]+\.(?:md|rst|txt|py)\b", flat):
            assert (PACKAGE / doc).exists() or (PACKAGE / Path(doc).name).exists(), \
                f"`pa-ci {name} --help` names {doc}, which is not in the package"
        for dotted in re.findall(r"\bpa_ci((?:\.\w+)+)", flat):
            parts = dotted.strip(".").split(".")
            if parts[0] in ("iterations_per_epoch", "epochs"):   # keys of a schedule file
                continue
            folder = PACKAGE
            while parts and (folder / parts[0]).is_dir():   # a subpackage: go in
                folder = folder / parts.pop(0)
            assert not parts or (folder / f"{parts[0]}.py").exists(), \
                f"`{name} --help` names pa_ci{dotted}, which is no module of the package"
    assert "DECISIONS" not in " ".join(texts.values())


def test_preset_choices_are_the_ace_presets():
    from pa_ci.chain.ace import PRESETS
    option = next(p for p in cli.commands["vstoi"].params if p.name == "preset")
    assert sorted(option.type.choices) == sorted(PRESETS)


# ----------------------------------------------------------------------------- outputs
def _parse(path: tuple[str, ...], argv: list[str]) -> dict:
    command = cli
    for name in path:
        command = command.commands[name]
    with command.make_context(path[-1], argv) as ctx:
        return ctx.params


def test_outputs_are_dash_o_output_and_out_is_a_hidden_alias():
    for path, command in commands():
        for param in command.params:
            if isinstance(param, click.Option) and param.name in ("output", "out", "out_dir"):
                assert param.name == "output" and {"-o", "--output"} <= set(param.opts), path
    for path, extra in ((("sweep",), []), (("sensitivity",), []), (("dataset", "build"), [])):
        for spelling in ("-o", "--output", "--out"):
            assert _parse(path, [spelling, "somewhere", *extra])["output"] == Path("somewhere")
        text = help_text(path, cli.commands[path[0]] if len(path) == 1
                         else cli.commands[path[0]].commands[path[1]])
        assert "-o, --output" in text and "--out " not in text and "--out," not in text


def test_a_missing_output_names_the_shown_spellings(run_cli):
    r = run_cli("sweep", "--tiny")
    assert r.code == 2 and r.err.strip() == "error: Missing option '-o' / '--output'."


# ----------------------------------------------------------------------------- iterations
def test_protocol_spec_counts_are_exactly_what_runs():
    pa = protocol_spec(0.5, "whole", "pa")
    assert (pa.pa_iters, pa.finetune_iters, pa.finetune_total) == (1000, 7000, 7000)
    base = protocol_spec(0.5, "whole", "magnitude")
    assert base.finetune_total == PAPER_BASELINE_ITERS == 8000 and base.pa_iters == 0
    assert protocol_spec(0.5, "whole", "magnitude", finetune_iters=0).finetune_total == 0
    assert protocol_spec(0.5, "whole", "magnitude", pa_iters=0, finetune_iters=5).finetune_total == 5
    assert protocol_spec(0.5, "whole", "pa", pa_iters=3, finetune_iters=0).finetune_total == 0
    with pytest.raises(ParameterError, match="no PA training"):
        protocol_spec(0.5, "whole", "magnitude", pa_iters=3)


class _Stop(PaCiError):
    pass


@pytest.mark.parametrize("argv, expected", [
    (["--method", "pa"], (1000, 7000)),
    (["--method", "magnitude"], (0, 8000)),
    (["--method", "magnitude", "--finetune-iters", "0"], (0, 0)),
    (["--method", "magnitude", "--pa-iters", "6", "--finetune-iters", "6"], (0, 6)),
    (["--method", "pa", "--pa-iters", "6", "--finetune-iters", "0"], (6, 0)),
])
def test_prune_cli_runs_the_iterations_it_is_given(run_cli, monkeypatch, tmp_path, argv, expected):
    seen = []

    def fake_run_protocol(model, spec, run_dir, **kwargs):
        seen.append(spec)
        raise _Stop("stopped by the test")

    monkeypatch.setattr("pa_ci.experiment.protocol.run_protocol", fake_run_protocol)
    r = run_cli("prune", "--tiny", "--rate", "0.5", "-o", tmp_path / "run", *argv)
    assert r.code == 1 and "stopped by the test" in r.err
    spec = seen[0]
    assert (spec.pa_iters, spec.finetune_total) == expected
    assert ("--pa-iters 6 is ignored" in r.err) == ("magnitude" in argv and "--pa-iters" in argv)


def test_magnitude_finetune_iters_zero_fine_tunes_nothing(run_cli, tmp_path):
    run = tmp_path / "run"
    r = run_cli("prune", "--tiny", "--rate", "0.5", "--scope", "decoder", "--method", "magnitude",
                "--finetune-iters", "0", "-o", run, "--json", "--quiet")
    assert r.code == 0, r.err
    d = r.json()
    assert d["finetune_total"] == 0 and d["vstoi_finetuned"] == d["vstoi_pruned"]
    assert not (run / "finetune").exists() and r.err == ""


def test_a_baseline_run_recorded_the_old_way_resumes(run_cli, tmp_path):
    """A magnitude run folder of pa-ci 0.1 recorded (pa_iters, finetune_iters) = (1, 1) for 2
    fine-tuning iterations; `--finetune-iters 2` is the same run and resumes it."""
    from pa_ci.codec.coder import load_codec
    from pa_ci.data.dataset import build_dataset, default_config
    ds = build_dataset(default_config(tiny=True))
    run = tmp_path / "old"
    old = run_protocol(load_codec().model, RunSpec(0.5, "decoder", "magnitude", pa_iters=1,
                                                   finetune_iters=1),
                       run, train_items=ds.train, eval_items=ds.test, batch_size=2,
                       dataset=ds.record())
    assert old["finetune_total"] == 2
    base = ["prune", "--tiny", "--rate", "0.5", "--scope", "decoder", "--method", "magnitude",
            "--batch-size", "2", "-o", run, "--resume", "--json"]
    again = run_cli(*base, "--finetune-iters", "2")
    assert again.code == 0, again.err
    assert again.json()["vstoi_finetuned"] == old["vstoi_finetuned"]
    other = run_cli(*base, "--finetune-iters", "3")
    assert other.code == 1 and "another spec" in other.err


def test_sweep_baseline_iterations():
    grid = dict(rates=(0.5,), scopes=("decoder",), methods=("pa", "magnitude"), seeds=(0,),
                pa_iters=3, finetune_iters=4)
    same = {s.method: s for s in plan_runs(**grid)}
    # the default baseline is the PA runs' total, recorded as before (sweep.json, results.csv)
    assert (same["magnitude"].pa_iters, same["magnitude"].finetune_iters) == (3, 4)
    assert same["magnitude"].finetune_total == 7 and same["pa"].finetune_total == 4
    assert [s.to_dict() for s in plan_runs(**grid, baseline_iters=7)] == \
        [s.to_dict() for s in plan_runs(**grid)]
    other = {s.method: s for s in plan_runs(**grid, baseline_iters=2)}
    assert (other["magnitude"].pa_iters, other["magnitude"].finetune_total) == (0, 2)
    assert other["pa"] == same["pa"]
    with pytest.raises(ParameterError, match="baseline_iters"):
        plan_runs(**grid, baseline_iters=-1)


def test_sweep_cli_passes_the_baseline_iterations(run_cli, monkeypatch, tmp_path):
    seen = []

    def fake_run_sweep(specs, job, out, **kwargs):
        seen.extend(specs)
        raise _Stop("stopped by the test")

    monkeypatch.setattr("pa_ci.experiment.sweep.run_sweep", fake_run_sweep)
    argv = ["sweep", "--tiny", "--rates", "0.5", "--scopes", "decoder", "--pa-iters", "2",
            "--finetune-iters", "3", "-o", tmp_path / "sw"]
    assert run_cli(*argv, "--baseline-iters", "0").code == 1
    totals = {s.method: s.finetune_total for s in seen}
    assert totals == {"pa": 3, "magnitude": 0}
    seen.clear()
    assert run_cli(*argv).code == 1
    assert {s.method: s.finetune_total for s in seen} == {"pa": 3, "magnitude": 5}


# ----------------------------------------------------------------------------- --quiet
@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_drops_the_progress_lines(run_cli, tmp_path, where):
    argv = ["prune", "--tiny", "--rate", "0.5", "--scope", "decoder", "--method", "magnitude",
            "--finetune-iters", "2", "--batch-size", "2", "-o", tmp_path / where]
    loud = run_cli(*argv[:-1], tmp_path / f"{where}-loud")
    assert loud.code == 0 and "fine-tune: 2/2" in loud.err
    quiet = run_cli("--quiet", *argv) if where == "before" else run_cli(*argv, "-q")
    assert quiet.code == 0 and quiet.err == "", quiet.err
    assert quiet.out.split("wrote")[0] == loud.out.split("wrote")[0]


def test_progress_outside_a_command_is_shown(capsys):
    progress = cli_module.Progress("x")
    assert progress.enabled
    progress(1, 1)
    assert "x: 1/1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- strict JSON
def _strict_load(text: str):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_strict_json_maps_non_finite_numbers_to_null():
    payload = {"a": math.nan, "b": [math.inf, 1.5, -math.inf], "c": np.float64("nan"),
               "d": np.array([1.0, np.nan]), "e": (np.int64(3), np.float32(0.5)),
               "f": {"g": Path("x/y"), "h": None, "i": "NaN"}, "j": np.bool_(True)}
    assert _strict_load(strict_json(payload)) == {
        "a": None, "b": [None, 1.5, None], "c": None, "d": [1.0, None], "e": [3, 0.5],
        "f": {"g": "x/y", "h": None, "i": "NaN"}, "j": True}


def test_json_output_of_a_command_is_strict(run_cli, monkeypatch, arctic_file):
    def nan_result(clean, noisy, params, extended=False):
        return {"vstoi": math.nan, "stoi_input": math.inf, "measure": "STOI", "frames": 0,
                "seconds": 0.0, "clean_file": str(clean), "coded_file": str(clean)}

    monkeypatch.setattr("pa_ci.chain.files.vstoi_of_files", nan_result)
    r = run_cli("vstoi", arctic_file, "--json")
    assert r.code == 0, r.err
    d = _strict_load(r.out)
    assert d["vstoi"] is None and d["stoi_input"] is None


# ----------------------------------------------------------------------------- packaging
def test_python_dash_m_and_a_light_import():
    r = subprocess.run([sys.executable, "-m", "pa_ci", "--version"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("pa-ci, version ")
    code = ("import sys, pa_ci; heavy = [m for m in ('numpy', 'numba', 'scipy', 'pa_ci.api') "
            "if m in sys.modules]; assert not heavy, heavy; "
            "assert callable(pa_ci.load) and callable(pa_ci.export_model); "
            "from pa_ci import export; assert export.__name__ == 'pa_ci.codec.export'; "
            "assert all(hasattr(pa_ci, n) for n in pa_ci.__all__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def test_package_metadata_files():
    assert (PACKAGE / "py.typed").is_file()
    assert (ROOT / "CHANGELOG.rst").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "py.typed" in cfg["options.package_data"]["pa_ci"]
    classifiers = cfg["metadata"]["classifiers"]
    for needed in ("Typing :: Typed", "Programming Language :: Python :: 3 :: Only",
                   "Intended Audience :: Science/Research", "Development Status ::"):
        assert needed in classifiers
    from pa_ci import __version__
    assert __version__ in (ROOT / "CHANGELOG.rst").read_text()
