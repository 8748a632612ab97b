"""A firmware FRAE: self-contained C99 for the decoder (CI receiver) and the zero-delay encoder.

:func:`write_c` writes ``DIR/<name>.h`` and ``DIR/<name>.c`` for one part of a model, holding the
weights exactly as the sparse export (:mod:`pa_ci.codec.export`) stores them with the same value type:

- every matrix as CSR: ``<M>_ptr`` (rows + 1, uint16), ``<M>_col`` (uint8 column indices, or
  uint16 beyond 256 columns) and ``<M>_val`` (the non-zero stored values: float for float32,
  int8_t / int16_t for the integer types), with ``<M>_scale`` (float, one per row) for the
  per-row types or one float scale per tensor for ``int8``; biases and the codebook dense;
- the state in a caller-owned struct, no malloc, no global mutable data, no library beyond
  ``<stdint.h>`` and ``<string.h>`` (memcpy); exp is the polynomial of :mod:`pa_ci.codec._exp` (no
  libm, so every platform computes the same bits).

API (``name`` = ``frae`` for example)::

    typedef struct { frae_real h[H_d]; } frae_decoder;               /* the receiver */
    void frae_decoder_init(frae_decoder *st);                        /* state 0: a new stream */
    int  frae_decoder_step(frae_decoder *st, unsigned index, float out[C]);
         /* one frame: 0, or -1 when index >= K (out all 0, state unchanged) */

    typedef struct { frae_real s[H_e]; frae_real h[H_d]; } frae_encoder;  /* the transmitter */
    void     frae_encoder_init(frae_encoder *st);
    unsigned frae_encoder_step(frae_encoder *st, const float x[C]);  /* one frame -> index */

``--part decoder`` writes the decoder API, ``encoder`` the encoder (which runs its own copy of
the decoder GRU, research §3; no output layer), ``whole`` both.

Arithmetic. ``<name>_real`` is ``double`` unless the code is compiled with ``-D<NAME>_FLOAT``
(upper-case name), then ``float``. In double, every operation is the one :mod:`pa_ci.codec.frae` does
in the same order (biases first, products in increasing input order, the encoder's
``W_ih`` over the decoder state before the pattern channels, a stored weight is ``q * s``
computed in double as :func:`pa_ci.codec.export.read_export` does, sigmoid ``1 / (1 + exp(-a))``,
tanh ``2 / (1 + exp(-2a)) - 1``, the same exp); the C then gives pa_ci's float64 decoder on
the dequantised theta bit for bit, as long as the compiler does not contract ``a*b + c`` into
FMA (C99 allows it: compile with ``-ffp-contract=off``, which the tests use). This matters: the
shipped decoder GRU is chaotic when it runs open loop (a 1e-15 change of the weights changes
decoded frames by up to 0.85 within one test item), so the encoder's copy of the decoder and
the receiver must compute the same bits; a float build is self-consistent (its encoder and
decoder run the same code) but does not follow pa_ci's float64 frames.

Maxima: outputs sigmoid(W_out h + b_out), only the ``output_maxima`` largest kept, the others 0;
among equal values the higher channel wins (pa_ci.codec.frae).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_text_atomic
from ..errors import ModelFileError, ParameterError
from .export import MEMORY_BUDGET_BYTES, StoredTensor, stored_tensors
from .frae import FraeConfig

__all__ = ["C_VALUE_TYPES", "CFiles", "generate_c", "write_c", "macs_per_frame", "find_cc",
           "compile_flags", "measure", "HARNESS"]

#: Value types the C generator holds (float16 has no C99 type).
C_VALUE_TYPES = ("float32", "int8", "int8-row", "int16-row")
_CTYPE = {"float32": "float", "int8": "int8_t", "int8-row": "int8_t", "int16-row": "int16_t"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_PARTS = ("decoder", "encoder", "whole")


def compile_flags() -> list[str]:
    """Flags the tests and the figures script compile with (strict C99, no FMA contraction)."""
    return ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]


def find_cc() -> str | None:
    """The system C compiler (``$CC``, ``cc``, ``gcc``, ``clang``) or None."""
    for c in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


# --------------------------------------------------------------------------- literals
def _flit(x: float) -> str:
    """An exact C float literal (hex) of a value that is a float32."""
    x = float(x)
    if x == 0:
        return "0.0f"
    return f"{float.hex(x)}f"


def _vals(q: np.ndarray, values: str) -> list[str]:
    if values == "float32":
        return [_flit(v) for v in q.ravel()]
    return [str(int(v)) for v in q.ravel()]


def _array(ctype: str, name: str, items: list[str], per_line: int = 8) -> str:
    items = items or ["0"]        # C has no zero-length arrays; the entry is never read
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


# --------------------------------------------------------------------------- generation
@dataclass
class CFiles:
    """What :func:`write_c` wrote (or :func:`generate_c` made): the two texts and the figures."""

    name: str
    part: str
    values: str
    header: str
    source: str
    macs: dict[str, int]
    weight_bytes: int
    paths: tuple[Path, Path] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "part": self.part, "values": self.values,
                "header": str(self.paths[0]) if self.paths else None,
                "source": str(self.paths[1]) if self.paths else None,
                "macs_per_frame": self.macs, "weight_bytes": self.weight_bytes,
                "budget_bytes": MEMORY_BUDGET_BYTES}


class _Gen:
    def __init__(self, name: str, values: str, tensors: dict[str, StoredTensor]) -> None:
        self.n, self.values, self.t = name, values, tensors
        self.parts: list[str] = []
        self.bytes = 0
        self.vtype = _CTYPE[values]

    def _emit(self, ctype: str, name: str, items: list[str], size: int) -> None:
        self.parts.append(_array(ctype, f"{self.n}_{name}", items))
        self.bytes += size * max(len(items), 1)

    def dense(self, key: str, tensor: str) -> None:
        t = self.t[tensor]
        vb = {"float": 4, "int8_t": 1, "int16_t": 2}[self.vtype]
        self._emit(self.vtype, key, _vals(t.q, self.values), vb)
        if t.scale is not None:          # one scale per tensor (biases, codebook, int8 weights)
            self.parts.append(f"#define {self.n}_{key}_S (({self.n}_real){_flit(t.scale)})\n")
            self.bytes += 4

    def csr(self, key: str, tensor: str, col_order: np.ndarray | None = None) -> int:
        """CSR of a (rows, cols) weight; ``col_order``: the input order products are summed in
        (the C input vector is in that order). Returns nnz."""
        t = self.t[tensor]
        q = t.q if col_order is None else t.q[:, col_order]
        rows, cols = q.shape
        ptr, col, val = [0], [], []
        for r in range(rows):
            nz = np.flatnonzero(q[r])
            col += [str(int(c)) for c in nz]
            val += _vals(q[r, nz], self.values)
            ptr.append(len(col))
        ctype = "uint8_t" if cols <= 256 else "uint16_t"
        self._emit("uint16_t", f"{key}_ptr", [str(p) for p in ptr], 2)
        self._emit(ctype, f"{key}_col", col, 1 if cols <= 256 else 2)
        vb = {"float": 4, "int8_t": 1, "int16_t": 2}[self.vtype]
        self._emit(self.vtype, f"{key}_val", val, vb)
        if isinstance(t.scale, np.ndarray):
            self._emit("float", f"{key}_scale", [_flit(s) for s in t.scale], 4)
        elif t.scale is not None:
            self.parts.append(f"#define {self.n}_{key}_S (({self.n}_real){_flit(t.scale)})\n")
            self.bytes += 4
        return len(col)

    def w(self, key: str, tensor: str, k: str, r: str) -> str:
        """C expression of stored entry k (row r) of a CSR matrix as a real."""
        t = self.t[tensor]
        v = f"(({self.n}_real){self.n}_{key}_val[{k}])"
        if t.scale is None:
            return v
        if isinstance(t.scale, np.ndarray):
            return f"({v} * ({self.n}_real){self.n}_{key}_scale[{r}])"
        return f"({v} * {self.n}_{key}_S)"

    def d(self, key: str, tensor: str, i: str) -> str:
        """C expression of dense entry i as a real."""
        t = self.t[tensor]
        v = f"(({self.n}_real){self.n}_{key}[{i}])"
        return v if t.scale is None else f"({v} * {self.n}_{key}_S)"


def _check(config: FraeConfig, part: str, values: str, name: str) -> None:
    if part not in _PARTS:
        raise ParameterError(f"part {part!r}; expected one of {', '.join(_PARTS)}")
    if values not in C_VALUE_TYPES:
        raise ParameterError(f"value type {values!r} cannot be written as C; expected one of "
                             f"{', '.join(C_VALUE_TYPES)}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(f"C name {name!r}; expected a C identifier (letters, digits, _; "
                             "at most 41 characters, not starting with a digit)")
    if config.codebook_size > 65535 or max(config.enc_hidden, config.dec_hidden) > 4096:
        raise ParameterError("the C generator holds at most 65535 codewords and 4096 hidden units")


def macs_per_frame(theta: np.ndarray, config: FraeConfig, part: str = "decoder",
                   values: str = "float32") -> dict[str, int]:
    """Multiply-adds per frame of the generated C (one per stored non-zero weight; the VQ search
    counts K*D; integer types add one scale multiply per stored weight, counted apart) and exp
    calls. ``decoder``: GRU + output layer; ``encoder``: encoder GRU, latent, VQ and its decoder
    GRU copy; ``whole``: both."""
    t = stored_tensors(theta, config, part="whole", values=values)
    nnz = {k: int(np.count_nonzero(v.q)) for k, v in t.items() if v.kind == "weight"}
    gru_d = nnz["dec.gru.W_ih"] + nnz["dec.gru.W_hh"]
    dec = gru_d + nnz["dec.out.W"]
    enc = (nnz["enc.gru.W_ih"] + nnz["enc.gru.W_hh"] + nnz["enc.latent.W"]
           + config.codebook_size * config.latent_dim + gru_d)
    exp_d = 3 * config.dec_hidden
    macs = {"decoder": dec, "encoder": enc, "whole": dec + enc}[part]
    scaled = {"decoder": dec, "encoder": enc - config.codebook_size * config.latent_dim,
              "whole": dec + enc - config.codebook_size * config.latent_dim}[part]
    exps = {"decoder": exp_d + config.n_channels, "encoder": 3 * config.enc_hidden + exp_d,
            "whole": 3 * config.enc_hidden + 2 * exp_d + config.n_channels}[part]
    return {"macs": macs, "scale_multiplies": 0 if values == "float32" else scaled, "exp": exps}


def generate_c(theta: np.ndarray, config: FraeConfig, *, part: str = "decoder",
               values: str = "float32", name: str = "frae", model_hash: str = "") -> CFiles:
    """The C99 header and source of ``part`` (module docstring); nothing is written."""
    _check(config, part, values, name)
    C, He, Hd = config.n_channels, config.enc_hidden, config.dec_hidden
    D, K, M = config.latent_dim, config.codebook_size, config.output_maxima
    tensors = stored_tensors(theta, config, part=part, values=values)
    g = _Gen(name, values, tensors)
    n, N = name, name.upper()
    dec = part in ("decoder", "whole")
    enc = part in ("encoder", "whole")

    g.dense("cb", "codebook")
    g.csr("dwi", "dec.gru.W_ih")
    g.csr("dwh", "dec.gru.W_hh")
    g.dense("dbi", "dec.gru.b_ih")
    g.dense("dbh", "dec.gru.b_hh")
    if dec:
        g.csr("ow", "dec.out.W")
        g.dense("ob", "dec.out.b")
    if enc:
        # pa_ci sums W_ih over h_{t-1} (columns C..C+Hd-1) before the pattern channels
        g.csr("ewi", "enc.gru.W_ih", np.r_[np.arange(C, C + Hd), np.arange(C)])
        g.csr("ewh", "enc.gru.W_hh")
        g.dense("ebi", "enc.gru.b_ih")
        g.dense("ebh", "enc.gru.b_hh")
        g.csr("lw", "enc.latent.W")
        g.dense("lb", "enc.latent.b")

    # ---- header
    h = [f"/* {n}.h: FRAE {part} generated by pa-ci (pa_ci.codec.firmware); {values} weights. */",
         f"#ifndef {N}_H", f"#define {N}_H", "",
         f"/* model {model_hash or '(hash unset)'}; C = {C} channels, K = {K} codewords, "
         f"{M} maxima kept */",
         f"#define {N}_N_CHANNELS {C}", f"#define {N}_CODEBOOK_SIZE {K}",
         f"#define {N}_OUTPUT_MAXIMA {M}", f"#define {N}_DEC_HIDDEN {Hd}",
         f"#define {N}_ENC_HIDDEN {He}", "",
         f"#ifdef {N}_FLOAT", f"typedef float {n}_real;   /* float arithmetic */", "#else",
         f"typedef double {n}_real;  /* default: bit-exact with pa_ci's float64 FRAE */",
         "#endif", ""]
    if dec:
        h += [f"/* Receiver state: caller-owned, {n}_decoder_init before the first frame. */",
              f"typedef struct {{ {n}_real h[{Hd}]; }} {n}_decoder;",
              f"void {n}_decoder_init({n}_decoder *st);",
              f"/* Decode one index into out[{C}] (sigmoid outputs, all but the {M} largest 0);",
              f"   returns 0, or -1 when index >= {K} (out all 0, state unchanged). */",
              f"int {n}_decoder_step({n}_decoder *st, unsigned index, float out[{C}]);", ""]
    if enc:
        h += ["/* Transmitter state: the encoder GRU s and its copy h of the decoder state. */",
              f"typedef struct {{ {n}_real s[{He}]; {n}_real h[{Hd}]; }} {n}_encoder;",
              f"void {n}_encoder_init({n}_encoder *st);",
              f"/* Encode one pattern frame x[{C}] -> codebook index 0..{K - 1} (zero delay). */",
              f"unsigned {n}_encoder_step({n}_encoder *st, const float x[{C}]);", ""]
    h += [f"#endif /* {N}_H */", ""]

    # ---- source
    s = [f"/* {n}.c: FRAE {part} generated by pa-ci (pa_ci.codec.firmware); {values} weights,",
         "   CSR matrices. Do not edit: regenerate with pa-ci export --format c. */",
         "#include <stdint.h>", "#include <string.h>", f'#include "{n}.h"', ""]
    s += g.parts
    s += ["", "/* exp(x) as pa_ci.codec._exp._exp: x clamped to [-88, 88], x = k ln2 + r, degree-13",
          "   Taylor polynomial of exp(r), times 2^k built from its IEEE bits. */",
          f"static {n}_real {n}_exp({n}_real x)", "{",
          f"    {n}_real kf, r, p;",
          f"#ifdef {N}_FLOAT",
          "    const float lim = 87.0f;", "    uint32_t bits;", "    float two;",
          "#else", "    const double lim = 88.0;", "    uint64_t bits;", "    double two;",
          "#endif",
          "    if (x < -lim) x = -lim;", "    if (x > lim) x = lim;",
          f"    kf = x * ({n}_real)1.4426950408889634 + ({n}_real)0.5;",
          "    {                       /* floor: truncate, then step down below 0 */",
          "        long k = (long)kf;",
          f"        kf = ({n}_real)k > kf ? ({n}_real)(k - 1) : ({n}_real)k;",
          "    }",
          f"    r = (x - kf * ({n}_real)6.93147180369123816490e-01) - "
          f"kf * ({n}_real)1.90821492927058770002e-10;"]
    coef = ["1.6059043836821613e-10", "2.08767569878681e-09", "2.505210838544172e-08",
            "2.755731922398589e-07", "2.7557319223985893e-06", "2.48015873015873e-05",
            "0.0001984126984126984", "0.001388888888888889", "0.008333333333333333",
            "0.041666666666666664", "0.16666666666666666", "0.5", "1.0", "1.0"]
    s += [f"    p = ({n}_real){coef[0]};"]
    s += [f"    p = p * r + ({n}_real){c};" for c in coef[1:]]
    s += [f"#ifdef {N}_FLOAT",
          "    bits = (uint32_t)((long)kf + 127) << 23;",
          "#else",
          "    bits = (uint64_t)((long)kf + 1023) << 52;",
          "#endif",
          "    memcpy(&two, &bits, sizeof two);",
          "    return p * two;", "}", ""]
    # CSR product helper: acc[r] += sum_k W[r, col[k]] v[col[k]] (bias already in acc)
    s += [f"static {n}_real {n}_sig({n}_real a) {{ return ({n}_real)1.0 / (({n}_real)1.0 + "
          f"{n}_exp(-a)); }}", ""]

    def mv(key: str, tensor: str, rows: int, vec: str, acc: str) -> list[str]:
        return [f"    for (r = 0; r < {rows}; ++r) {{",
                f"        {n}_real a = {acc}[r];",
                f"        for (k = {n}_{key}_ptr[r]; k < {n}_{key}_ptr[r + 1]; ++k)",
                f"            a += {g.w(key, tensor, 'k', 'r')} * {vec}[{n}_{key}_col[k]];",
                f"        {acc}[r] = a;", "    }"]

    def bias(key: str, tensor: str, size: int, acc: str) -> list[str]:
        return [f"    for (r = 0; r < {size}; ++r) {acc}[r] = {g.d(key, tensor, 'r')};"]

    def gru(state: str, H: int, gi: str, gh: str) -> list[str]:
        return [f"    for (r = 0; r < {2 * H}; ++r) rz[r] = {n}_sig({gi}[r] + {gh}[r]);",
                f"    for (r = 0; r < {H}; ++r) {{",
                f"        {n}_real nn = ({n}_real)2.0 / (({n}_real)1.0 + {n}_exp(({n}_real)-2.0 * "
                f"({gi}[{2 * H} + r] + rz[r] * {gh}[{2 * H} + r]))) - ({n}_real)1.0;",
                f"        {n}_real z = rz[{H} + r];",
                f"        {state}[r] = (({n}_real)1.0 - z) * nn + z * {state}[r];", "    }"]

    # decoder GRU step, shared by the receiver and the encoder's copy
    s += ["/* h <- GRU_dec(C[index], h) (reset-after, gates r, z, n). */",
          f"static void {n}_dec_gru({n}_real h[{Hd}], unsigned index)", "{",
          f"    {n}_real x[{D}], gi[{3 * Hd}], gh[{3 * Hd}], rz[{2 * Hd}];",
          "    unsigned r, k;",
          f"    for (r = 0; r < {D}; ++r) x[r] = {g.d('cb', 'codebook', f'index * {D}u + r')};"]
    s += bias("dbh", "dec.gru.b_hh", 3 * Hd, "gh") + mv("dwh", "dec.gru.W_hh", 3 * Hd, "h", "gh")
    s += bias("dbi", "dec.gru.b_ih", 3 * Hd, "gi") + mv("dwi", "dec.gru.W_ih", 3 * Hd, "x", "gi")
    s += gru("h", Hd, "gi", "gh") + ["}", ""]
    if dec:
        s += [f"void {n}_decoder_init({n}_decoder *st)", "{",
              "    unsigned r;", f"    for (r = 0; r < {Hd}; ++r) st->h[r] = ({n}_real)0.0;",
              "}", "",
              f"int {n}_decoder_step({n}_decoder *st, unsigned index, float out[{C}])", "{",
              f"    {n}_real y[{C}];", "    unsigned r, k, j;",
              f"    if (index >= {K}u) {{",
              f"        for (r = 0; r < {C}; ++r) out[r] = 0.0f;", "        return -1;", "    }",
              f"    {n}_dec_gru(st->h, index);"]
        s += bias("ob", "dec.out.b", C, "y") + mv("ow", "dec.out.W", C, "st->h", "y")
        s += [f"    for (r = 0; r < {C}; ++r) y[r] = {n}_sig(y[r]);"]
        if M == 0 or M >= C:
            s += [f"    for (r = 0; r < {C}; ++r) out[r] = (float)y[r];"]
        else:
            s += ["    /* keep channel r when fewer than the maxima rank above it: lower channels",
                  "       when strictly larger, higher channels also when equal */",
                  f"    for (r = 0; r < {C}; ++r) {{", "        unsigned above = 0;",
                  "        for (j = 0; j < r; ++j) above += y[j] > y[r];",
                  f"        for (j = r + 1; j < {C}; ++j) above += y[j] >= y[r];",
                  f"        out[r] = above < {M}u ? (float)y[r] : 0.0f;", "    }"]
        s += ["    (void)k;", "    (void)j;", "    return 0;", "}", ""]
    if enc:
        s += [f"void {n}_encoder_init({n}_encoder *st)", "{", "    unsigned r;",
              f"    for (r = 0; r < {He}; ++r) st->s[r] = ({n}_real)0.0;",
              f"    for (r = 0; r < {Hd}; ++r) st->h[r] = ({n}_real)0.0;", "}", "",
              f"unsigned {n}_encoder_step({n}_encoder *st, const float x[{C}])", "{",
              f"    {n}_real v[{Hd + C}], gi[{3 * He}], gh[{3 * He}], rz[{2 * He}], z[{D}];",
              f"    {n}_real best_dist = ({n}_real)0.0;",
              "    unsigned r, k, best = 0;",
              "    /* the input [h_{t-1}; x_t] in the order pa_ci sums it (state first) */",
              f"    for (r = 0; r < {Hd}; ++r) v[r] = st->h[r];",
              f"    for (r = 0; r < {C}; ++r) v[{Hd} + r] = ({n}_real)x[r];"]
        s += bias("ebi", "enc.gru.b_ih", 3 * He, "gi") + mv("ewi", "enc.gru.W_ih", 3 * He, "v", "gi")
        s += bias("ebh", "enc.gru.b_hh", 3 * He, "gh") + mv("ewh", "enc.gru.W_hh", 3 * He,
                                                           "st->s", "gh")
        s += gru("st->s", He, "gi", "gh")
        s += bias("lb", "enc.latent.b", D, "z") + mv("lw", "enc.latent.W", D, "st->s", "z")
        s += ["    /* i = argmin_k ||z - C_k||^2, ties -> lowest k */",
              f"    for (k = 0; k < {K}u; ++k) {{",
              f"        {n}_real acc = ({n}_real)0.0;",
              f"        for (r = 0; r < {D}; ++r) {{",
              f"            {n}_real diff = z[r] - {g.d('cb', 'codebook', f'k * {D}u + r')};",
              "            acc += diff * diff;", "        }",
              "        if (k == 0 || acc < best_dist) {", "            best_dist = acc;",
              "            best = k;", "        }", "    }",
              f"    {n}_dec_gru(st->h, best);", "    return best;", "}", ""]
    macs = macs_per_frame(theta, config, part, values)
    return CFiles(name, part, values, "\n".join(h), "\n".join(s), macs, g.bytes)


def write_c(folder: str | os.PathLike, theta: np.ndarray, config: FraeConfig, *,
            part: str = "decoder", values: str = "float32", name: str = "frae",
            model_hash: str = "") -> CFiles:
    """Write ``folder/<name>.h`` and ``folder/<name>.c`` (each atomically; the folder is created).
    A file-system failure is one ModelFileError line naming the path."""
    files = generate_c(theta, config, part=part, values=values, name=name, model_hash=model_hash)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ModelFileError(f"{folder}: is a file; expected a folder for the C files "
                             f"({name}.h, {name}.c)")
    paths = (folder / f"{name}.h", folder / f"{name}.c")
    for path, text in zip(paths, (files.header, files.source)):
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot write the C file: "
                                 f"{exc.strerror or exc.__class__.__name__}") from None
    files.paths = paths
    return files


# --------------------------------------------------------------------------- measuring
#: A test harness (stdin -> stdout): ``dec N`` reads N indices and prints N lines of C outputs;
#: ``enc N`` reads N lines of C floats and prints N indices. Compile it with the part's .c.
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "@NAME@.h"

int main(int argc, char **argv)
{
    long n, t;
    int c;
    if (argc < 3) return 2;
    n = strtol(argv[2], NULL, 10);
    (void)t;
    (void)c;
    (void)n;
#ifdef HARNESS_SIZEOF
    printf("%u %u\n", (unsigned)sizeof(@NAME@_decoder), (unsigned)sizeof(@NAME@_encoder));
    return 0;
#endif
    if (strcmp(argv[1], "dec") == 0) {
#ifdef HARNESS_DEC
        @NAME@_decoder st;
        float out[@NAME_UPPER@_N_CHANNELS];
        @NAME@_decoder_init(&st);
        for (t = 0; t < n; ++t) {
            unsigned idx;
            if (scanf("%u", &idx) != 1) return 3;
            if (@NAME@_decoder_step(&st, idx, out) != 0) printf("bad\n");
            for (c = 0; c < @NAME_UPPER@_N_CHANNELS; ++c)
                printf(c ? " %a" : "%a", (double)out[c]);
            printf("\n");
        }
#endif
    } else {
#ifdef HARNESS_ENC
        @NAME@_encoder st;
        float x[@NAME_UPPER@_N_CHANNELS];
        @NAME@_encoder_init(&st);
        for (t = 0; t < n; ++t) {
            for (c = 0; c < @NAME_UPPER@_N_CHANNELS; ++c) {
                double v;
                if (scanf("%lf", &v) != 1) return 3;
                x[c] = (float)v;
            }
            printf("%u\n", @NAME@_encoder_step(&st, x));
        }
#endif
    }
    return 0;
}
"""


def harness_source(name: str) -> str:
    return HARNESS.replace("@NAME_UPPER@", name.upper()).replace("@NAME@", name)


def measure(folder: str | os.PathLike, name: str, part: str, cc: str | None = None,
            opt: str = "-Os", real_float: bool = False) -> dict[str, Any]:
    """Compile ``folder/<name>.c`` to an object and read its sections (``size -A``: code in
    .text, weights in .rodata), and the state sizes (sizeof) from a compiled probe. Figures are
    for the host compiler (x86-64 code is not Cortex-M code; the weights' bytes are the same)."""
    cc = cc or find_cc()
    if cc is None:
        raise ParameterError("no C compiler (cc, gcc or clang) found")
    folder = Path(folder)
    flags = compile_flags() + [opt] + ([f"-D{name.upper()}_FLOAT"] if real_float else [])
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / f"{name}.o"
        subprocess.run([cc, *flags, "-c", str(folder / f"{name}.c"), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        sections: dict[str, int] = {}
        sz = shutil.which("size")
        if sz:
            text = subprocess.run([sz, "-A", str(obj)], check=True, capture_output=True,
                                  text=True).stdout
            for line in text.splitlines():
                f = line.split()
                if len(f) >= 2 and f[0].startswith(".") and f[1].isdigit():
                    sections[f[0]] = sections.get(f[0], 0) + int(f[1])
        code = sum(v for k, v in sections.items() if k.startswith(".text"))
        rodata = sum(v for k, v in sections.items() if k.startswith(".rodata"))
        data = sum(v for k, v in sections.items() if k.startswith((".data", ".bss")))
        probe = Path(tmp) / "probe.c"
        src = harness_source(name)
        defs = ["-DHARNESS_SIZEOF"]
        if part == "decoder":
            src = src.replace(f"sizeof({name}_encoder)", "0")
        if part == "encoder":
            src = src.replace(f"sizeof({name}_decoder)", "0")
        probe.write_text(src)
        exe = Path(tmp) / "probe"
        r = subprocess.run([cc, *flags, *defs, f"-I{folder}", str(probe),
                            str(folder / f"{name}.c"), "-o", str(exe)], capture_output=True,
                           text=True)
        if r.returncode:
            raise ParameterError(f"{folder / (name + '.c')}: the size probe does not compile: "
                                 f"{(r.stderr.strip().splitlines() or ['?'])[0]}")
        dec_b, enc_b = map(int, subprocess.run([str(exe), "x", "0"], check=True,
                                               capture_output=True, text=True).stdout.split())
    return {"compiler": Path(cc).name, "flags": " ".join(flags), "code_bytes": code,
            "rodata_bytes": rodata, "data_bytes": data, "flash_bytes": code + rodata + data,
            "decoder_state_bytes": dec_b, "encoder_state_bytes": enc_b,
            "sections": sections}


def write_json(path: str | os.PathLike, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
