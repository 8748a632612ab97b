"""pa_ci.yaml_subset: the schedule reader must agree with PyYAML (test-only oracle) and refuse cleanly."""
from __future__ import annotations

import math
import os
import pickle
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_ci.errors import PaCiError
from pa_ci.yaml_subset import MAX_DEPTH, YamlError, YamlList, YamlMap, line_of, load_file, loads

yaml = pytest.importorskip("yaml", reason="PyYAML is the test oracle (pip install pyyaml)")

DISTILLER = Path(os.environ.get("PA_CI_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "data" / "distiller"
DISTILLER_FILES = sorted(DISTILLER.glob("*.yaml")) if DISTILLER.is_dir() else []
needs_distiller = pytest.mark.skipif(not DISTILLER_FILES, reason=f"no Distiller files at {DISTILLER}")


def strict_equal(a: object, b: object) -> bool:
    """== that also compares types (True != 1, 1.0 != 1, 'x' != b'x') and treats NaN == NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a) and \
            all(type(k1) is type(k2) for k1, k2 in zip(a, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def assert_same_as_pyyaml(text: str) -> object:
    ours, ref = loads(text), yaml.safe_load(text)
    assert strict_equal(ours, ref), f"{text!r}: ours {ours!r} != PyYAML {ref!r}"
    return ours


def check_lines(node: object, lines: list[str]) -> None:
    """Every recorded key line holds that key before a ':'; lines increase; .line = first line."""
    if isinstance(node, YamlMap):
        key_lines = [node.key_lines[k] for k in node]
        assert key_lines == sorted(key_lines) and (not node or node.line == key_lines[0])
        for key, ln in zip(node, key_lines):
            text = lines[ln - 1]
            assert re.search(rf"""['"]?{re.escape(str(key))}['"]?\s*:""", text), (key, ln, text)
            check_lines(node[key], lines)
    elif isinstance(node, YamlList):
        assert node.item_lines == sorted(node.item_lines) and len(node.item_lines) == len(node)
        assert not node or node.line == node.item_lines[0]
        for item in node:
            check_lines(item, lines)


# --- the real Distiller schedules ---------------------------------------------------------------
@needs_distiller
@pytest.mark.parametrize("path", DISTILLER_FILES, ids=lambda p: p.name)
def test_distiller_files_equal_pyyaml_and_lines_are_right(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    doc = assert_same_as_pyyaml(text)
    assert isinstance(doc, YamlMap) and {"version", "pruners", "policies"} <= set(doc)
    assert strict_equal(load_file(path), doc)
    lines = text.split("\n")
    check_lines(doc, lines)

    def where(pattern: str) -> list[int]:
        return [n for n, ln in enumerate(lines, 1) if re.match(pattern, ln)]

    for key in doc:   # top-level keys: the line that starts with "key:"
        assert where(rf"{key}:") == [doc.key_lines[key]]
    for name in doc["pruners"]:
        assert where(rf"\s+{name}\s*:") == [line_of(doc["pruners"], name)]
    policies = doc["policies"]
    assert policies.item_lines == where(r"\s+- ") and policies.line == policies.item_lines[0]
    for key in ("starting_epoch", "ending_epoch", "frequency"):
        assert [p.key_lines[key] for p in policies] == where(rf"\s+{key}\s*:")
    assert [line_of(next(iter(p.values())), "instance_name") for p in policies] == \
        where(r"\s+instance_name\s*:")
    for spec in doc["pruners"].values():
        if "weights" in spec:   # a one-line flow list: every item is on the 'weights:' line
            assert set(spec["weights"].item_lines) == {spec.key_lines["weights"]}
        if "sensitivities" in spec:
            sens = spec["sensitivities"]
            assert [sens.key_lines[k] for k in sens] == where(r"\s+'[^']+':")


@needs_distiller
def test_agp_trailing_comment_and_spaced_colon() -> None:
    doc = load_file(DISTILLER / "word_lang_model.schedule_agp.yaml")
    assert doc["policies"][0]["ending_epoch"] == 20          # "ending_epoch: 20  #14"
    assert doc["pruners"]["l0_rnn_pruner"]["initial_sparsity"] == 0.05   # "initial_sparsity : 0.05"
    assert doc["policies"][0]["pruner"] == {"instance_name": "l0_rnn_pruner"}


# --- hand-written cases, each compared with yaml.safe_load ---------------------------------------
SAME = [
    "", "# only a comment\n#another\n", "---\n", "---\n# c\n...\n", "\n\n",
    "a: 1\nb: two\n", "a: 1  # trailing\n#full\nb: x#not-a-comment\n", "ending_epoch: 20  #14",
    "instance_name : l0_rnn_pruner\n", "a  :  b  \n", "'*': 0.5\n\"a b\": c\n'it''s': 1\n",
    "a:\nb:\n  c:\n", "a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", "a:\n  # comment\n  b: 1\n",
    "a:\n  value on its own line\n", "a:\n  [1, 2]\n",
    "- a\n- b\n", "  - a\n  - b\n", "-\n- b\n-\n", "- # c\n  a\n", "- - a\n  - b\n- c\n",
    "- - - a\n", "-  -  a\n   - b\n", "- a: 1\n  b: 2\n- c\n", "- 'a': 1\n", "- \"a\" : 1\n  b: 2\n",
    "policies:\n  - pruner:\n      instance_name: p1\n    starting_epoch: 0\n    ending_epoch: 38\n",
    "key:\n- a\n- b\nother: 1\n", "- a:\n  - b\n", "- a:\n- b\n", "a:\n    - x\n    - y\nb: 1\n",
    "[a, b, 'c.d']", "{a: 1, b: [2, 3]}", "a: [b, c,]\n", "a: {b: [1, {c: d}], e: {}}\n",
    "a: [\n  1, 2\n]\n", "weights: [rnn.weight_ih_l0,\n          rnn.weight_hh_l0]  # two\nb: 1\n",
    "a: [x, #c\n y]\n", "a: [x,\n# c\n y]\n", "a: [x,y]\n", "a: [x ,y ]\n", "a: { }\nb: [ ]\n",
    "a: {b, c: 1}\n", "a: {b:1}\n", "a: {\"b\":1}\n", "a: {b: ,}\n", "a: [a:b, -x, -]\n",
    "a: [b]#c\n", "a: 'b'#c\n", "{a: 1\n}\n", "{\na: 1}\n", "a: [[1, 2], [3], []]\n",
    # scalars as PyYAML resolves them
    "[null, Null, NULL, ~, nULL, '']", "a:\nb: ~\n", "[true, false, True, False, TRUE, FALSE, tRUE]",
    "[yes, no, Yes, NO, on, off, On, OFF, y, n]", "[0, -3, +7, -0, 1_000, 0x1F, -0x1f, 0b101, 010, 0_7, 08]",
    "[1:30, 12:30:00, 1:1.5]", "[0.05, .5, 0., 09.5, 1.e+3, 1.5E+3, 1.0e-3, 1_0.5, 1.0e-05]",
    "[1e-3, 1.0e3, 1.5e3, -.5, +.5, ._5, .e+3, +, ., _1]", "[.inf, -.inf, +.inf, .Inf, -.INF, .nan, .NaN]",
    "[-.nan, 0o10]", "a: x - y\nb: don't\nc: x'y'\nd: x!\ne: x&y\nf: ?x\ng: :x\nh: -x\n",
    "a: x  y\nb: [x  y, a b]\n", "a: http://x.org/a#b\n", "5: a\n2.5: b\nnull: c\ntrue: d\n",
    "a: 'single ''quoted'' # not a comment'\n", "a: '\\n'\nb: \"\\n\\t\\\\\\\"\\u0041\\x41\\/\\U0001F600\"\n",
    "a: \"\\0\\a\\b\\v\\f\\r\\e\\ \\N\\_\\L\\P\"\n", "a: 'tab\tinside'\n", "a: \"é\"\nb: é\n",
    "--- {a: 1}\n", "--- [a]\n", "--- a\n", "--- # c\na: 1\n", "a: 1\n...\n# c\n", "a\n", "'a'\n",
    "\ufeffa: 1\n", "a: 1\r\nb: [2,\r\n 3]\r\n", "a: 1\rb: 2\r", ":x: 1\n-a: 1\na:b: c\n",
    "key with space: v\n", "k" * 1024 + ": 1\n", "'" + "k" * 1022 + "': 1\n",
    "{" + "k" * 1020 + "    : 1}",
]


@pytest.mark.parametrize("text", SAME)
def test_same_as_pyyaml(text: str) -> None:
    assert_same_as_pyyaml(text)


def test_scalar_types_spot_checks() -> None:
    doc = loads("a: 1e-3\nb: 1.0e-3\nc: yes\nd: '*'\ne: 010\nf: 1:30\ng: ~\nh: -.inf\ni: .nan\n")
    assert doc["a"] == "1e-3" and doc["b"] == 0.001 and doc["c"] is True and doc["d"] == "*"
    assert doc["e"] == 8 and doc["f"] == 90 and doc["g"] is None and doc["h"] == -math.inf
    assert math.isnan(doc["i"])


def test_exact_lines_of_nested_keys_and_items() -> None:
    text = ("# header\n"               # 1
            "version: 1\n"             # 2
            "\n"                       # 3
            "pruners:\n"               # 4
            "  p1:\n"                  # 5
            "    class: AGP\n"         # 6
            "    weights: [a,\n"       # 7
            "      b]\n"               # 8
            "policies:\n"              # 9
            "  - pruner:\n"            # 10
            "      instance_name: p1\n"  # 11
            "    starting_epoch: 0\n"  # 12
            "  -\n"                    # 13
            "    x\n"                  # 14
            "  - - q\n"                # 15
            "    - {k: 1,\n"           # 16
            "       j: 2}\n"           # 17
            "top:\n"                   # 18
            "- a\n")                   # 19
    doc = assert_same_as_pyyaml(text)
    assert doc.line == 2 and doc.key_lines == {"version": 2, "pruners": 4, "policies": 9, "top": 18}
    p1 = doc["pruners"]["p1"]
    assert doc["pruners"].line == 5 and p1.line == 6 and p1.key_lines == {"class": 6, "weights": 7}
    assert p1["weights"].line == 7 and p1["weights"].item_lines == [7, 8]
    pol = doc["policies"]
    assert pol.line == 10 and pol.item_lines == [10, 13, 15]
    assert pol[0].line == 10 and pol[0].key_lines == {"pruner": 10, "starting_epoch": 12}
    assert pol[0]["pruner"].key_lines == {"instance_name": 11}
    assert pol[2].line == 15 and pol[2].item_lines == [15, 16]
    assert pol[2][1].line == 16 and pol[2][1].key_lines == {"k": 16, "j": 17}
    assert doc["top"].line == 19 and doc["top"].item_lines == [19]
    assert line_of(doc, "policies") == 9 and line_of(pol, 1) == 13 and line_of(pol, -1) == 15
    assert line_of(pol, 3) is None and line_of(doc, "nope") is None and line_of(5, 0) is None


def test_containers_behave_like_dict_and_list() -> None:
    m, lst = YamlMap({"a": 1}, line=3), YamlList(["x"])
    assert m == {"a": 1} and m.key_lines == {"a": 3} and lst == ["x"] and lst.item_lines == [None]
    doc = loads("a: [1, {b: 2}]\n")
    again = pickle.loads(pickle.dumps(doc))
    assert again == doc and again.key_lines == doc.key_lines and again["a"].item_lines == [1, 1]


# --- refusals: one-line YamlError naming the right line --------------------------------------------
REFUSE = [
    ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first at line 1)"),
    ("x:\n  frequency: 1\n  b: 2\n  frequency: 3\n", 4, "duplicate key 'frequency' (first at line 2)"),
    ("a: {b: 1,\n  b: 2}\n", 2, "duplicate key 'b'"), ("1: a\ntrue: b\n", 2, "duplicate key True"),
    ("k" * 1025 + ": 1\n", 1, "at most 1024"), ("{" + "k" * 1025 + ": 1}\n", 1, "at most 1024"),
    ("a: {b\n : c}\n", 2, "on one line"),
    ("a: &x 1\n", 1, "anchors"), ("a: 1\nb: *x\n", 2, "aliases"), ("- *\n", 1, "aliases"),
    ("a: [*x]\n", 1, "aliases"), ("&a k: 1\n", 1, "anchors"),
    ("a: !!str 1\n", 1, "tags"), ("a: ! x\n", 1, "tags"), ("a:\n  - !t x\n", 2, "tags"),
    ("a: |\n  x\n", 1, "block scalars"), ("a: >\n  x\n", 1, "block scalars"),
    ("? a\n: 1\n", 1, "complex keys"), ("a: {? b}\n", 1, "complex keys"), ("a: ? x\n", 1, "complex keys"),
    ("a: [?b]\n", 1, "complex keys"), ("[a]: 1\n", 1, "mapping keys"), ("a: {[b]: 1}\n", 1, "mapping keys"),
    ("a: [b: 1]\n", 1, "inside '[...]'"), ("<<: {b: 1}\n", 1, "merge"), ("a: =\n", 1, "special YAML"),
    ("a: 2002-12-14\n", 1, "dates"), ("a: 2001-12-14 21:59:43.10 -5\n", 1, "dates"),
    ("%YAML 1.1\n---\na: 1\n", 1, "directives"), ("a: 1\n---\nb: 2\n", 2, "second document"),
    ("a: 1\n...\nb: 2\n", 3, "after the document end"), ("a: 1\n...\n\t\n", 3, "TAB"), ("a: 1\n...\t\n", 2, "TAB"),
    ("a: 1\n... x\n", 2, "after the document end"),
    ("a:\n\tb: 1\n", 2, "TAB"), ("a:\tb\n", 1, "TAB"), ("a: b\t\n", 1, "TAB"), ("a: [1,\tb]\n", 1, "TAB"),
    ("a: 1\n\t\nb: 2\n", 2, "TAB"), ("---\t\na: 1\n", 1, "TAB"),
    ("a: 1\n  b: 2\n", 2, "unexpected indentation"), ("a:\n  b: 1\n c: 2\n", 3, "unexpected indentation"),
    ("a:\n  - x\n b: 1\n", 3, "unexpected indentation"), ("  a: 1\nb: 2\n", 2, "end of the document"),
    ("- a\n- b\nc: 1\n", 3, "a mapping key where a sequence item is expected"),
    ("a:\n  - b\n  c: 1\n", 3, "where a sequence item is expected"),
    ("a: 1\n- b\n", 2, "where a mapping key is expected"), ("- a: 1\n  - b\n", 2, "mapping key is expected"),
    ("a: - x\n", 1, "sequence item"), ("--- - a\n", 1, "'-'"),
    ("a: 'x\n  y'\n", 1, "unclosed quoted"), ("a: \"x\n", 1, "unclosed quoted"), ("a: \"x\\\n  y\"\n", 1, "unclosed"),
    ("a: [1, 2\n", 1, "unclosed '['"), ("x: 1\na: {b: [1,\n  2]\n", 2, "unclosed '{'"),
    ("a: [1, 2]]\n", 1, "after the closing ']'"), ("a: [1] x\n", 1, "after the closing ']'"),
    ("a: 'x' y\n", 1, "after the closing quote"), ("a: \"b\"c\n", 1, "after the closing quote"),
    ("a: b: c\n", 1, "ambiguous"), ("a: x:\n", 1, "ambiguous"), ("--- a: 1\n", 1, "ambiguous"),
    ("a: 1\nb\n", 2, "expected 'key: value'"), ("a: [a\n b]\n", 2, "multi-line"),
    ("a: x\n  y\n", 2, "multi-line"), ("- a\n -b\n", 2, "multi-line"),
    ("a: [,]\n", 1, "expected a value"), ("a: [a,,b]\n", 1, "expected a value"),
    ("a: [#]\n", 1, "expected a value"), ("a: {b: c: d}\n", 1, "expected ',' or '}'"),
    ("a: @x\n", 1, "'@'"), ("a: `x\n", 1, "'`'"), ("a: %x\n", 1, "'%'"), ("a: , b\n", 1, "expected a value"),
    ("a: \"\\q\"\n", 1, "invalid escape"), ("a: \"\\x4\"\n", 1, "invalid escape"),
    ("a: \"\\U00110000\"\n", 1, "invalid escape"), ("x: 1\na: \x07\n", 2, "unacceptable character U+0007"),
    ("a: " + "1" * 5000 + "\n", 1, "number"), ("a: 0b_\n", 1, "number"),
]


@pytest.mark.parametrize("text,line,words", REFUSE)
def test_refusals_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(YamlError) as info:
        loads(text)
    err = info.value
    assert err.line == line and err.path is None and str(err).startswith(f"line {line}: ")
    assert words in str(err) and "\n" not in str(err) and len(str(err)) < 200
    with pytest.raises(YamlError) as info:
        loads(text, path="cfg/s.yaml")
    assert str(info.value).startswith(f"cfg/s.yaml:{line}: ") and info.value.reason == err.reason


def test_error_type_and_format() -> None:
    assert issubclass(YamlError, PaCiError) and issubclass(YamlError, ValueError)
    assert str(YamlError("bad", 3, "s.yaml")) == "s.yaml:3: bad"
    assert str(YamlError("bad", 3)) == "line 3: bad"
    assert str(YamlError("bad", None, "s.yaml")) == "s.yaml: bad" and str(YamlError("bad")) == "bad"
    err = pickle.loads(pickle.dumps(YamlError("bad", 3, "s.yaml")))
    assert (err.reason, err.line, err.path) == ("bad", 3, "s.yaml")


def test_nesting_is_capped_without_recursion_error() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert_same_as_pyyaml(ok)
    for deep in ("[" * 5000 + "]" * 5000, "{a: " * 5000 + "}" * 5000,
                 "".join(" " * (2 * k) + "- \n" for k in range(500)) + " " * 1000 + "x\n",
                 "".join(" " * k + "a:\n" for k in range(2000))):
        with pytest.raises(YamlError, match="nested deeper"):
            loads(deep)


def test_load_file(tmp_path: Path) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("a: [1, 2]\nb: x\n", encoding="utf-8")
    assert load_file(good) == {"a": [1, 2], "b": "x"} and load_file(str(good))["a"].line == 1
    with pytest.raises(YamlError) as info:
        load_file(tmp_path / "missing.yaml")
    assert info.value.line is None and str(info.value).startswith(f"{tmp_path / 'missing.yaml'}: ")
    with pytest.raises(YamlError, match="cannot read"):
        load_file(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(YamlError) as info:
        load_file(bad)
    assert str(info.value).startswith(f"{bad}:2: ") and "UTF-8" in str(info.value)
    dup = tmp_path / "dup.yaml"
    dup.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(YamlError, match=re.escape(f"{dup}:2: duplicate key 'a' (first at line 1)")):
        load_file(dup)


# --- property tests ------------------------------------------------------------------------------
SPECIAL = ["*", "a: b", "yes", "No", "on", "1.5", " lead", "trail ", "", "null", "~", "-", "- x", "#c",
           "a #b", "[x]", "{y}", "it's", 'x"y', "%p", "@q", "!t", "&a", "0x1F", "010", "1e-3", ".inf",
           "1:30", "2002-12-14", "=", "<<", "?", "é", "a,b", "'", "x: ", "3", "-1.5e+3"]
SAFE = "abcxyz019_.-/+ "


def documents(text_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    scalars = (st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
               | st.booleans() | st.none() | text_strategy)
    keys = text_strategy.filter(bool)   # PyYAML writes an empty key as "? ''", outside the subset
    tree = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(keys, kids, max_size=4), max_leaves=12)
    return st.dictionaries(keys, tree, max_size=5)


WITH_SPACES = st.sampled_from(SPECIAL) | st.text(SAFE, max_size=10)
NO_SPACES = st.sampled_from([s for s in SPECIAL if " " not in s]) | st.text(SAFE.strip(), max_size=10)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(WITH_SPACES), st.sampled_from([False, None]))
def test_roundtrip_of_pyyaml_dumps(data: dict, flow: bool | None) -> None:
    # width: PyYAML folds scalars longer than 80 columns over lines, which the subset refuses.
    text = yaml.safe_dump(data, default_flow_style=flow, width=10**6, sort_keys=False)
    assert strict_equal(loads(text), data), text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(NO_SPACES), st.sampled_from([False, None]), st.integers(2, 6))
def test_roundtrip_with_default_width_breaks_flow_lines(data: dict, flow: bool | None,
                                                       indent: int) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, indent=indent, sort_keys=False)  # [...] wrap
    assert strict_equal(loads(text), data), text


FUZZ_BASE = """---
version: 1   # c
pruners:
  p1: {class: AutomatedGradualPruner, weights: [enc.w, 'dec.w', "x\\ty"], initial_sparsity: .05}
  p2:
    class : SensitivityPruner
    weights: [a,
      b, c,]
    sensitivities:
      '*': 0.5
      yes: no
policies:
- pruner:
    instance_name: p1
  starting_epoch: 0
  ending_epoch: 20 #14
- - 1
  - -2.5e+3
  - ~
- {}
- []
- "q\\u0041"
- 'it''s'
...
"""
POOL = list(" :-#'\"[]{},?!&*|>%@`\t\n.0123456789eE+_xy~\\é\x07\u2028") + \
    ["\n  ", ": ", "- ", " #", "---", "...", "\r"]


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        k, op = rng.randrange(len(text) + 1), rng.random()
        if op < 0.4:
            text = text[:k] + rng.choice(POOL) + text[k:]
        elif op < 0.7:
            text = text[:k] + text[k + rng.randint(1, 3):]
        else:
            text = text[:k] + rng.choice(POOL) + text[k + 1:]
    return text


def test_fuzz_mutations_parse_as_pyyaml_or_raise_yaml_error() -> None:
    """Never another exception, one-line messages, and whatever we accept PyYAML reads the same."""
    bases = [FUZZ_BASE] + [p.read_text(encoding="utf-8") for p in DISTILLER_FILES]
    assert_same_as_pyyaml(FUZZ_BASE)
    rng = random.Random(20250205)
    accepted = 0
    for n in range(1200):
        text = _mutate(bases[n % len(bases)], rng)
        try:
            ours = loads(text, path="f.yaml")
        except YamlError as exc:
            msg = str(exc)
            assert "\n" not in msg and re.match(r"f\.yaml:\d+: \S", msg), (text, msg)
            assert 1 <= exc.line <= text.count("\n") + text.count("\r") + text.count("\u2028") + 1
            continue
        accepted += 1
        ref = yaml.safe_load(text)   # raising here would mean we accepted what PyYAML refuses
        assert strict_equal(ours, ref), text
    assert 200 < accepted < 1150   # the mutations exercise both outcomes
