"""Flash, RAM and multiply-adds of the generated C decoder / encoder of the shipped model.

    python examples/firmware/run.py        # writes examples/firmware/figures.json

For each part (decoder, encoder) and value type (float32, int8-row), pa_ci.codec.firmware writes the
C, compiles it with the system compiler (-Os, strict C99, no FMA contraction) for the default
double arithmetic and for -D<NAME>_FLOAT, and reads code (.text) and weights (.rodata) from the
object (``size -A``) and the state struct from sizeof. x86-64 code bytes stand in for a
Cortex-M's (the weight bytes do not depend on the target). Also the index agreement of the C
encoder with pa_ci's encoder on the dequantised weights, over the 8 bundled test items' patterns.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from pa_ci.codec import firmware as fw
from pa_ci.codec.coder import load_codec
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.codec.export import MEMORY_BUDGET_BYTES, export_bytes, from_bytes
from pa_ci.codec.frae import forward

HERE = Path(__file__).resolve().parent


def _run_encoder(folder: Path, name: str, pattern: np.ndarray, real_float: bool) -> np.ndarray:
    main = folder / "main.c"
    main.write_text(fw.harness_source(name))
    exe = folder / "enc"
    flags = fw.compile_flags() + ["-O2", "-DHARNESS_ENC"] + ([f"-D{name.upper()}_FLOAT"]
                                                             if real_float else [])
    subprocess.run([fw.find_cc(), *flags, f"-I{folder}", str(main), str(folder / f"{name}.c"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    text = "\n".join(" ".join(float.hex(float(v)) for v in row) for row in pattern) + "\n"
    out = subprocess.run([str(exe), "enc", str(len(pattern))], input=text, check=True,
                         capture_output=True, text=True).stdout
    return np.array(out.split(), dtype=np.int64)


def main() -> None:
    if fw.find_cc() is None:
        sys.exit("no C compiler: the figures need one")
    codec = load_codec()
    items = build_dataset(default_config(tiny=True)).split("test")
    figures = {"model_hash": codec.hash, "budget_bytes": MEMORY_BUDGET_BYTES, "builds": []}
    for part in ("decoder", "encoder"):
        for values in ("float32", "int8-row"):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                files = fw.write_c(folder, codec.theta, codec.config, part=part, values=values,
                                   name="frae", model_hash=codec.hash)
                row = {"part": part, "values": values, "macs_per_frame": files.macs,
                       "weight_bytes_counted": files.weight_bytes}
                for real_float in (False, True):
                    m = fw.measure(folder, "frae", part, real_float=real_float)
                    key = "float" if real_float else "double"
                    row[key] = {k: m[k] for k in ("code_bytes", "rodata_bytes", "flash_bytes",
                                                  "decoder_state_bytes", "encoder_state_bytes")}
                    row[key]["flash_budget_fraction"] = m["flash_bytes"] / MEMORY_BUDGET_BYTES
                    row[key]["compiler"], row[key]["flags"] = m["compiler"], m["flags"]
                    if part == "encoder":
                        deq = from_bytes(export_bytes(codec.theta, codec.config, part="encoder",
                                                      values=values)).theta
                        same = total = 0
                        for it in items:
                            x = it.pattern.astype(np.float32).astype(np.float64)
                            ref = forward(deq, codec.config, x).indices
                            got = _run_encoder(folder, "frae", x, real_float)
                            same += int(np.sum(got == ref))
                            total += ref.size
                        row[key]["index_agreement"] = same / total
                        row[key]["frames"] = total
                figures["builds"].append(row)
                print(part, values, row["double"], row["float"], file=sys.stderr)
    fw.write_json(HERE / "figures.json", figures)


if __name__ == "__main__":
    main()
