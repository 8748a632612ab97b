"""A small, safe reader for the YAML subset of compression schedules, with line numbers.

Why not PyYAML: the library may depend on numpy, scipy, numba, soundfile and click only
(DECISIONS.md), and schedule errors must name the line ("schedule.yaml:12: unknown tensor ..."),
so every mapping keeps the line of each key (:class:`YamlMap`) and every sequence the line of
each item (:class:`YamlList`). PyYAML is the test oracle: whatever this reader accepts, it
returns what ``yaml.safe_load`` returns for the same text.

Safety: no object construction, no tags, no anchors or aliases (so no "billion laughs"), no
merge keys; the result is built only from dict, list, str, int, float, bool and None, nesting is
capped at :data:`MAX_DEPTH`, and every problem is a one-line :class:`YamlError` naming the line.

The subset (one document, spaces only -- a TAB outside quotes and comments is an error, as in
PyYAML):

* comments: ``# ...`` on their own line or after whitespace (``ending_epoch: 20  #14`` is 20);
* block mappings nested by indentation; keys are plain or quoted scalars, spaces before the colon
  are allowed (``instance_name : p1``); ``key:`` with nothing below is None;
* block sequences ``- item``, also the compact ``- key: v`` / ``- - v`` forms and sequences at the
  same column as their parent key (``key:\\n- a``);
* flow collections ``[a, 'b.c']`` and ``{a: 1, b: [2, 3]}``, nested, over several lines, with a
  trailing comma; ``{a, b: 1}`` gives ``a: None``;
* scalars resolved as PyYAML (YAML 1.1) resolves them: ``null ~`` and empty -> None;
  ``true/false/yes/no/on/off`` (lower, Capitalised, UPPER) -> bool; ints ``0 -3 +7 1_000``,
  ``0x1F 0b101``, leading-zero octal ``010`` (= 8) and base-60 ``1:30`` (= 90); floats need a dot:
  ``0.05 .5 1.0e-3 1.e+3 .inf -.inf .nan`` -- but ``1e-3`` and ``1.0e3`` (no sign in the exponent)
  and ``-.5`` are *strings*, exactly as in PyYAML; anything else is a string, stripped;
  ``'single'`` (``''`` escape) and ``"double"`` quotes (``\\\\ \\" \\n \\t \\xHH \\uHHHH
  \\UHHHHHHHH`` and the other YAML escapes);
* optional ``---`` first and ``...`` last.

Refused with a YamlError naming the line: duplicate keys (PyYAML silently keeps the last; keys
equal in Python, such as ``1`` and ``true``, count as duplicates), keys over 1024 characters,
anchors ``&``, aliases ``*`` (a quoted ``'*'`` is an ordinary string), tags ``!``, block scalars
``|``/``>``, ``?`` complex keys, collections as keys, ``key: value`` pairs inside ``[...]``,
merge keys ``<<``, dates/times (PyYAML would build datetime objects), directives ``%YAML``, a second
document, scalars continued on the next line, and every malformed construct.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Iterable, Iterator

from .errors import PaCiError, YamlError  # noqa: F401 - YamlError: raised here, defined in errors

__all__ = ["YamlError", "YamlMap", "YamlList", "loads", "load_file", "line_of", "MAX_DEPTH"]

#: Deepest nesting of collections accepted (protects the recursive parser).
MAX_DEPTH = 64


class YamlMap(dict):
    """A mapping, insertion-ordered; ``line`` = line of its first key (or of ``{``),
    ``key_lines[key]`` = 1-based line of that key."""

    def __init__(self, items: Any = (), line: int | None = None) -> None:
        super().__init__(items)
        self.line = line
        self.key_lines: dict = {key: line for key in self}


class YamlList(list):
    """A sequence; ``line`` = line of its first ``-`` (or of ``[``), ``item_lines[i]`` = line of
    item i."""

    def __init__(self, items: Iterable = (), line: int | None = None) -> None:
        super().__init__(items)
        self.line = line
        self.item_lines: list = [line] * len(self)


def line_of(node: Any, key_or_index: Any) -> int | None:
    """The line of ``node[key_or_index]`` (key line or item line), or None if unknown."""
    if isinstance(node, YamlMap):
        return node.key_lines.get(key_or_index)
    if isinstance(node, YamlList) and isinstance(key_or_index, int):
        n = len(node.item_lines)
        return node.item_lines[key_or_index] if -n <= key_or_index < n else None
    return None


def loads(text: str, path: str | None = None) -> Any:
    """Parse one YAML document of the subset; empty or comments only -> None."""
    return _Parser(text, None if path is None else str(path)).document()


def load_file(path: str | os.PathLike) -> Any:
    """Read ``path`` as UTF-8 and :func:`loads` it; unreadable files raise YamlError too."""
    name = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise YamlError(f"cannot read the file ({exc.strerror or type(exc).__name__}); "
                        "expected a readable YAML file", None, name) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"byte {exc.start} is not valid UTF-8; expected UTF-8 text",
                        data[:exc.start].count(b"\n") + 1, name) from None
    return loads(text, name)


# --- scalars: PyYAML's (YAML 1.1) implicit resolvers, copied from yaml/resolver.py -------------
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {w: v for v, words in ((True, "yes Yes YES true True TRUE on On ON"),
                                (False, "no No NO false False FALSE off Off OFF"))
          for w in words.split()}
_FLOAT = re.compile(r"""[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)? |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF) |\.(?:nan|NaN|NAN)""", re.X)
_INT = re.compile(r"""[-+]?0b[0-1_]+ |[-+]?0[0-7_]+ |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+ |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+""", re.X)
_TIMESTAMP = re.compile(r"""[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]
     (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?""", re.X)


def _sexagesimal(value: str, part: type) -> Any:
    """Base-60 ``a:b:c`` summed from the last digit group, in PyYAML's order."""
    total, base = part(0), 1
    for piece in reversed(value.split(":")):
        total += part(piece) * base
        base *= 60
    return total


def _number(text: str) -> Any:
    """Build the int or float for text matched by _INT / _FLOAT (PyYAML's constructors)."""
    value = text.replace("_", "")
    sign = -1 if value[0] == "-" else 1
    value = value[1:] if value[0] in "+-" else value
    if _FLOAT.fullmatch(text):
        value = value.lower()
        if value == ".inf":
            return sign * math.inf
        if value == ".nan":
            return math.nan
        return sign * (_sexagesimal(value, float) if ":" in value else float(value))
    if value.startswith("0b"):
        return sign * int(value[2:], 2)
    if value.startswith("0x"):
        return sign * int(value[2:], 16)
    if ":" in value:
        return sign * _sexagesimal(value, int)
    return sign * int(value, 8 if value[0] == "0" and value != "0" else 10)


# --- characters ---------------------------------------------------------------------------------
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")
_ESCAPES = {"0": "\0", "a": "\x07", "b": "\x08", "t": "\t", "\t": "\t", "n": "\n", "v": "\x0b",
            "f": "\x0c", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "\\": "\\", "/": "/",
            "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_REFUSED = {
    "&": "YAML anchors ('&') are not supported by pa-ci's schedule reader; write the value out",
    "*": "YAML aliases ('*') are not supported by pa-ci's schedule reader; write the value out "
         "(quote it, '*', to mean the text *)",
    "!": "YAML tags ('!') are not supported by pa-ci's schedule reader; remove the tag",
    "|": "block scalars ('|') are not supported by pa-ci's schedule reader; "
         "write the text on one line, quoted",
    ">": "block scalars ('>') are not supported by pa-ci's schedule reader; "
         "write the text on one line, quoted",
    "%": "'%' cannot start a plain value; quote the value",
    "@": "'@' cannot start a plain value; quote the value",
    "`": "'`' cannot start a plain value; quote the value",
}
_COMPLEX_KEY = "complex keys ('? ') are not supported by pa-ci's schedule reader; " \
               "write 'key: value' with a plain or quoted key"
_MULTILINE = "multi-line values are not supported"


def _ends(line: str, p: int, extra: str = "") -> bool:
    """True if position p is the end of the line, a space or one of ``extra``."""
    return p >= len(line) or line[p] in " \t" + extra


def _skip(line: str, p: int) -> int:
    while p < len(line) and line[p] == " ":
        p += 1
    return p


def _snippet(line: str, p: int) -> str:
    text = line[p:].strip()
    return repr(text if len(text) <= 30 else text[:27] + "...")


def _marker(line: str, marker: str) -> bool:
    return line.startswith(marker) and _ends(line, 3)


class _Parser:
    """Recursive-descent parser over physical lines; a position is (line index, column)."""

    def __init__(self, text: str, path: str | None) -> None:
        self.path = path
        if not isinstance(text, str):
            raise YamlError(f"expected text (str), got {type(text).__name__}", None, path)
        self.lines = _BREAKS.sub("\n", text.removeprefix("\ufeff")).split("\n")
        self.i, self.col, self.depth = 0, None, 0   # col None: line i not measured yet
        self.doc_line = -1                          # line of '---' when content follows it
        seen = False
        for n, line in enumerate(self.lines):
            bad = _NON_PRINTABLE.search(line)
            if bad:
                raise self._error(n, f"unacceptable character U+{ord(bad.group()):04X} at column "
                                     f"{bad.start() + 1}; YAML text must be printable")
            if not line.strip(" \t") or line.lstrip(" \t").startswith("#"):
                continue
            if line.startswith("%") and not seen:
                raise self._error(n, "YAML directives ('%YAML', '%TAG') are not supported; "
                                     "remove the line")
            if _marker(line, "---"):
                if seen:
                    raise self._error(n, "a second document ('---') is not supported; "
                                         "pa-ci reads one document per file")
                rest = line[3:].lstrip(" ")   # a TAB here is refused by _peek, as by PyYAML
                self.lines[n] = "   " + line[3:]
                self.doc_line = n if rest and not rest.startswith("#") else -1
            elif _marker(line, "..."):
                if not seen:
                    raise self._error(n, "a document end marker '...' before any document; "
                                         "expected '---' or content first")
                for m in range(n, len(self.lines)):
                    after = self.lines[m][3:].lstrip(" ") if m == n else self.lines[m].lstrip(" ")
                    if after.startswith("\t"):
                        raise self._error(m, "TAB character after '...' or in the indentation; "
                                             "use spaces")
                    if after and not after.startswith("#"):
                        raise self._error(m, "text after the document end marker '...'; "
                                             "pa-ci reads one document per file")
                del self.lines[n:]
                break
            seen = True

    def _error(self, i: int, reason: str) -> YamlError:
        return YamlError(reason, i + 1, self.path)

    def _unexpected(self, i: int, p: int, expected: str) -> YamlError:
        line = self.lines[i]
        if p < len(line) and line[p] == "\t":
            return self._error(i, f"TAB character at column {p + 1}; YAML separates with spaces")
        found = _snippet(line, p) if p < len(line) else "the end of the line"
        return self._error(i, f"unexpected {found} at column {p + 1}; expected {expected}")

    def _nest(self, i: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(i, f"collections nested deeper than {MAX_DEPTH} levels; "
                                 "expected a flatter document")

    # --- block structure ----------------------------------------------------------------------
    def _peek(self) -> tuple[int, int] | None:
        """Position of the next content (skipping blank and comment lines), or None at the end."""
        if self.col is not None:
            return self.i, self.col
        while self.i < len(self.lines):
            line = self.lines[self.i]
            content = line.lstrip(" ")
            if content.startswith("\t"):   # PyYAML refuses TABs even on blank lines
                raise self._error(self.i, "TAB character in the indentation; indent with spaces")
            if content.strip(" \t") and not content.startswith("#"):
                self.col = len(line) - len(content)
                return self.i, self.col
            self.i += 1
        return None

    def _advance(self, i: int) -> None:
        self.i, self.col = i + 1, None

    def document(self) -> Any:
        pos = self._peek()
        if pos is None:
            return None
        value = self._inline(*pos) if pos[0] == self.doc_line else self._node(-1)
        pos = self._peek()
        if pos is not None:
            raise self._unexpected(pos[0], pos[1], f"the end of the document (check the indentation; "
                                                       f"{_MULTILINE})")
        return value

    def _node(self, parent: int) -> Any:
        """A block node indented deeper than ``parent``; None if there is none."""
        pos = self._peek()
        if pos is None or pos[1] <= parent:
            return None
        i, col = pos
        if _is_dash(self.lines[i], col):
            return self._seq(col, indentless=False)
        if self._key_at(i, col) is not None:
            return self._map(col)
        return self._inline(i, col)

    def _map(self, indent: int) -> YamlMap:
        node = YamlMap(line=self._peek()[0] + 1)
        for i, col, line in self._block_lines(indent, node.line, "a key"):
            found = self._key_at(i, col)
            if found is None:
                if _is_dash(line, col):
                    raise self._error(i, f"a sequence item '-' where a mapping key is expected; "
                                         f"expected 'key: value' like line {node.line}")
                raise self._unexpected(i, col, f"'key: value' like line {node.line}")
            key, p = found
            if key in node:
                raise self._error(i, f"duplicate key {key!r} (first at line {node.key_lines[key]}); "
                                     "each key may appear once in a mapping")
            node.key_lines[key] = i + 1
            p = _skip(line, p)
            if p < len(line) and line[p] != "#":
                node[key] = self._inline(i, p, after_key=True)
                continue
            self._advance(i)
            nxt = self._peek()
            if nxt is not None and nxt[1] == indent and _is_dash(self.lines[nxt[0]], indent):
                node[key] = self._seq(indent, indentless=True)
            else:
                node[key] = self._node(indent)
        return node

    def _seq(self, indent: int, indentless: bool) -> YamlList:
        node = YamlList(line=self._peek()[0] + 1)
        for i, col, line in self._block_lines(indent, node.line, "'- item'"):
            if not _is_dash(line, col):
                if indentless:
                    self.depth -= 1
                    return node
                what = "a mapping key" if self._key_at(i, col) is not None else _snippet(line, col)
                raise self._error(i, f"{what} where a sequence item is expected; "
                                     f"expected '- item' at column {indent + 1} like line {node.line}")
            node.item_lines.append(i + 1)
            p = _skip(line, col + 1)
            if p < len(line) and line[p] == "\t":
                raise self._unexpected(i, p, "an item")
            if p >= len(line) or line[p] == "#":
                self._advance(i)
            else:
                self.col = p   # the item starts on the dash line, indented to column p
            node.append(self._node(indent))
        return node

    def _block_lines(self, indent: int, first: int, expected: str) -> Iterator[tuple[int, int, str]]:
        """Nest into the block at column ``indent`` that starts at line ``first`` and yield its
        lines (i, col, text) as the caller reaches them; at the block's end leave the nesting.
        A deeper line is an error (the caller consumes the deeper lines of its values)."""
        self._nest(first - 1)
        while True:
            pos = self._peek()
            if pos is None or pos[1] < indent:
                self.depth -= 1
                return
            i, col = pos
            if col > indent:
                raise self._error(i, f"unexpected indentation at column {col + 1}; expected "
                                     f"{expected} at column {indent + 1} like line {first} "
                                     f"({_MULTILINE})")
            yield i, col, self.lines[i]

    def _key_at(self, i: int, col: int) -> tuple[Any, int] | None:
        """(key, column after its ':') if a 'key:' starts at (i, col), else None."""
        line = self.lines[i]
        ch = line[col]
        if ch in _REFUSED:
            raise self._error(i, _REFUSED[ch])
        if ch == "?" and _ends(line, col + 1):
            raise self._error(i, _COMPLEX_KEY)
        if ch in "'\"":
            key, p = self._quoted(i, col)
            p = _skip(line, p)
            if p < len(line) and line[p] == ":" and _ends(line, p + 1):
                return self._key_length(i, col, p, key), p + 1
            return None
        if ch in "[{,]}" or (ch in "-:" and _ends(line, col + 1)):
            return None
        for p in range(col, len(line)):
            if line[p] == ":" and _ends(line, p + 1):
                return self._key_length(i, col, p, self._resolve(line[col:p].rstrip(" "), i)), p + 1
            if line[p] == "#" and line[p - 1] == " ":
                return None
            if line[p] == "\t":
                raise self._unexpected(i, p, "a key without TAB characters")
        return None

    def _key_length(self, i: int, start: int, colon: int, key: Any) -> Any:
        if colon - start > 1024:   # PyYAML's limit for implicit keys
            raise self._error(i, f"a mapping key of {colon - start} characters; expected at most 1024")
        return key

    def _inline(self, i: int, p: int, after_key: bool = False) -> Any:
        """A scalar or flow collection starting at (i, p) and ending its line (or lines)."""
        line = self.lines[i]
        ch = line[p]
        if ch in "[{":
            value, i, end = self._flow(i, p)
            line, what = self.lines[i], f"closing {self.lines[i][end - 1]!r}"
        elif ch in "'\"":
            value, end = self._quoted(i, p)
            what = "closing quote"
        else:
            self._plain_start(i, p, flow=False, after_key=after_key)
            end = p
            while end < len(line) and not (line[end] == "#" and line[end - 1] == " "):
                if line[end] == "\t":
                    raise self._unexpected(i, end, "a value without TAB characters")
                if line[end] == ":" and _ends(line, end + 1):
                    raise self._error(i, f"': ' inside the plain value {_snippet(line, p)} is "
                                         "ambiguous; quote the value or start a nested mapping "
                                         "on the next line")
                end += 1
            value, what = self._resolve(line[p:end].rstrip(" "), i), "value"
        end = _skip(line, end)
        if end < len(line) and line[end] != "#":
            if line[end] == ":":
                raise self._error(i, "a quoted or flow key must be followed by ': '; collections "
                                     "cannot be mapping keys")
            raise self._unexpected(i, end, f"the end of the line or a comment after the {what}")
        self._advance(i)
        return value

    def _plain_start(self, i: int, p: int, flow: bool, after_key: bool = False) -> None:
        """Refuse characters that cannot start a plain scalar (PyYAML's check_plain)."""
        line, ch = self.lines[i], self.lines[i][p]
        if ch in _REFUSED:
            raise self._error(i, _REFUSED[ch])
        if ch == "?" and (flow or _ends(line, p + 1)):
            raise self._error(i, _COMPLEX_KEY)
        if ch == "-" and _ends(line, p + 1):
            raise self._error(i, "a sequence item '-' cannot start here; put the '- item' lines "
                                 "below the key" if after_key else "unexpected '-'; expected a value")
        if ch in ",[]{}#\t" or (ch == ":" and (flow or _ends(line, p + 1))):
            raise self._unexpected(i, p, "a value")

    # --- flow collections and scalars ---------------------------------------------------------
    def _flow_skip(self, i: int, p: int, opened: int, close: str) -> tuple[int, int]:
        """Skip spaces, comments and line breaks inside a flow collection opened on line ``opened``."""
        while True:
            line = self.lines[i]
            p = _skip(line, p)
            if p < len(line) and not (line[p] == "#" and (p == 0 or line[p - 1] == " ")):
                return i, p
            i, p = i + 1, 0
            if i >= len(self.lines):
                raise self._error(opened, f"unclosed {'[' if close == ']' else '{'!r}; "
                                          f"expected {close!r} before the end of the document")

    def _flow(self, i: int, p: int) -> tuple[Any, int, int]:
        """A flow collection at (i, p) -> (value, line, column after its closing bracket)."""
        opened, close = i, "]" if self.lines[i][p] == "[" else "}"
        self._nest(i)
        node: Any = YamlList(line=i + 1) if close == "]" else YamlMap(line=i + 1)
        i, p = self._flow_skip(i, p + 1, opened, close)
        while self.lines[i][p] != close:
            item_line = i + 1
            if close == "]":
                item, i, p = self._flow_node(i, p, opened, close)
                node.append(item)
                node.item_lines.append(item_line)
                i, p = self._flow_skip(i, p, opened, close)
                if self.lines[i][p] == ":":
                    raise self._error(i, "a 'key: value' pair inside '[...]' is not supported; "
                                         "write it as {key: value}")
            else:
                if self.lines[i][p] in "[{":
                    raise self._error(i, "collections cannot be mapping keys; "
                                         "use a plain or quoted key")
                start = p
                key, i, p = self._flow_node(i, p, opened, close)
                key_end = i
                i, p = self._flow_skip(i, p, opened, close)
                value = None
                if self.lines[i][p] == ":":
                    if i != key_end:
                        raise self._error(i, "a ':' on the line after its key; expected the key "
                                             "and ':' on one line")
                    self._key_length(i, start, p, key)
                    i, p = self._flow_skip(i, p + 1, opened, close)
                    if self.lines[i][p] not in ",}":
                        value, i, p = self._flow_node(i, p, opened, close)
                        i, p = self._flow_skip(i, p, opened, close)
                if key in node:
                    raise self._error(item_line - 1, f"duplicate key {key!r} (first at line "
                                      f"{node.key_lines[key]}); each key may appear once in a mapping")
                node[key], node.key_lines[key] = value, item_line
            ch = self.lines[i][p]
            if ch == ",":
                i, p = self._flow_skip(i, p + 1, opened, close)
            elif ch != close:
                hint = f" ({_MULTILINE})" if i + 1 != item_line else ""
                raise self._unexpected(i, p, f"',' or {close!r} after the item{hint}")
        self.depth -= 1
        return node, i, p + 1

    def _flow_node(self, i: int, p: int, opened: int, close: str) -> tuple[Any, int, int]:
        line = self.lines[i]
        if line[p] in "[{":
            return self._flow(i, p)
        if line[p] in "'\"":
            value, p = self._quoted(i, p)
            return value, i, p
        if line[p] == "]" or line[p] == "}":
            raise self._unexpected(i, p, f"a value or {close!r}")
        self._plain_start(i, p, flow=True)
        start = p
        while p < len(line) and line[p] not in ",?[]{}" and not (
                line[p] == ":" and _ends(line, p + 1, ",[]{}")) and not (
                line[p] == "#" and line[p - 1] == " "):
            if line[p] == "\t":
                raise self._unexpected(i, p, "a value without TAB characters")
            p += 1
        return self._resolve(line[start:p].rstrip(" "), i), i, p

    def _quoted(self, i: int, start: int) -> tuple[str, int]:
        """A single- or double-quoted scalar on one line -> (text, column after the quote)."""
        line, quote, out, p = self.lines[i], self.lines[i][start], [], start + 1
        while p < len(line):
            ch = line[p]
            if ch == quote:
                if quote == "'" and line[p + 1:p + 2] == "'":
                    out.append("'")
                    p += 2
                    continue
                return "".join(out), p + 1
            if ch == "\\" and quote == '"':
                esc = line[p + 1:p + 2]
                if esc and esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                    p += 2
                    continue
                digits = line[p + 2:p + 2 + _HEX_ESCAPES.get(esc, 0)]
                if esc and esc in _HEX_ESCAPES and len(digits) == _HEX_ESCAPES[esc] and \
                        all(c in "0123456789abcdefABCDEF" for c in digits) and \
                        int(digits, 16) <= 0x10FFFF:
                    out.append(chr(int(digits, 16)))
                    p += 2 + len(digits)
                    continue
                if not esc:
                    break
                raise self._error(i, f"invalid escape {line[p:p + 2 + len(digits)]!r} at column "
                                     f"{p + 1}; expected one of \\\\ \\\" \\n \\t \\xHH \\uHHHH ...")
            out.append(ch)
            p += 1
        raise self._error(i, f"unclosed quoted string starting at column {start + 1}; expected the "
                             f"closing {quote} on the same line ({_MULTILINE})")

    def _resolve(self, text: str, i: int) -> Any:
        """The value of a plain scalar as PyYAML's safe_load resolves it (see module docstring)."""
        if text in _NULLS:
            return None
        if text in _BOOLS:
            return _BOOLS[text]
        if _FLOAT.fullmatch(text) or _INT.fullmatch(text):
            try:
                return _number(text)
            except ValueError:
                raise self._error(i, f"cannot convert the number {text[:30]!r} (at most 4300 "
                                     "digits); quote it to keep it as text") from None
        if _TIMESTAMP.fullmatch(text):
            raise self._error(i, f"dates and times like {text!r} are not supported; quote the "
                                 "value to keep it as text")
        if text in ("<<", "="):
            raise self._error(i, f"{text!r} is a special YAML value (merge/value key) and not "
                                 "supported; quote it to mean the text")
        return text


def _is_dash(line: str, col: int) -> bool:
    return line[col] == "-" and _ends(line, col + 1)
