"""Bytes vs VSTOI loss of the shipped model's decoder exported at each value type and pruning rate.

    python examples/quantisation/run.py            # writes examples/quantisation/results.csv
    python examples/quantisation/run.py --table    # prints the RST table of results.csv only

For decoder magnitude pruning (pa_ci.prune.magnitude, scope 'decoder', no fine-tuning) at 0, 55, 70 and
85 % of the decoder's matrix weights, the pruned float64 model's decoder is written as a sparse
export (pa_ci.codec.export) in float32, float16, int8 (one scale per tensor), int8-row and int16-row
(one scale per weight row), and scored on the test split (112 items, pa_ci.codec.coder.DecodedScorer):

- ``vstoi``: closed loop, as deployed: the float64 encoder (enc.*) whose copy of the decoder is
  the export's (dequantised) decoder, and the export at the receiver;
- ``vstoi_open_loop``: the float64 encoder with its float64 decoder copy, the export at the
  receiver (a transmitter that ignores the export: the chaotic decoder GRU drifts away);
- losses against the unpruned float64 model (``loss_vs_unpruned``) and against the pruned float64
  model of the same rate (``loss_vs_pruned``); ``bytes``: the whole export file (52-byte header
  included).
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

from pa_ci.codec.coder import load_codec
from pa_ci.data.dataset import build_dataset, default_config
from pa_ci.codec.export import export_bytes, from_bytes
from pa_ci.codec.frae import decode, forward, frae_layout
from pa_ci.prune.magnitude import prune
from pa_ci.rst import simple_table
from pa_ci.train.evaluate import DecodedScorer

HERE = Path(__file__).resolve().parent
CSV = HERE / "results.csv"
RATES = (0.0, 0.55, 0.70, 0.85)
VALUES = ("float32", "float16", "int8", "int8-row", "int16-row")
FIELDS = ("rate", "values", "bytes", "nonzero_weights", "vstoi", "loss_vs_unpruned",
          "loss_vs_pruned", "vstoi_open_loop", "open_loop_loss_vs_unpruned", "vstoi_float64_pruned",
          "vstoi_float64_unpruned", "index_agreement")


def run() -> list[dict]:
    codec = load_codec()
    layout = frae_layout(codec.config)
    items = build_dataset(default_config()).split("test")
    patterns = [it.pattern for it in items]
    scorer = DecodedScorer(items)
    base_out = forward(codec.theta, codec.config, patterns)
    base = float(scorer.scores(base_out.decoded, base_out.offsets).mean())
    rows = []
    for rate in RATES:
        theta, _ = prune(codec.theta, layout, "decoder", rate) if rate else (codec.theta, None)
        ref = forward(theta, codec.config, patterns)
        pruned64 = float(scorer.scores(ref.decoded, ref.offsets).mean())
        for values in VALUES:
            t0 = time.monotonic()
            data = export_bytes(theta, codec.config, part="decoder", values=values,
                                model_hash=codec.hash)
            ex = from_bytes(data)
            mixed = np.where(ex.present, ex.theta, theta)          # float64 enc.*, export decoder
            out = forward(mixed, codec.config, patterns)
            closed = float(scorer.scores(out.decoded, out.offsets).mean())
            open_dec = decode(ex.theta, codec.config, ref.indices, offsets=ref.offsets)
            opened = float(scorer.scores(open_dec, ref.offsets).mean())
            w = layout.mask(parts="decoder", kinds="weight")
            rows.append({"rate": rate, "values": values, "bytes": len(data),
                         "nonzero_weights": int(np.count_nonzero(ex.theta[w])),
                         "vstoi": closed, "loss_vs_unpruned": base - closed,
                         "loss_vs_pruned": pruned64 - closed, "vstoi_open_loop": opened,
                         "open_loop_loss_vs_unpruned": base - opened,
                         "vstoi_float64_pruned": pruned64, "vstoi_float64_unpruned": base,
                         "index_agreement": float(np.mean(out.indices == ref.indices))})
            print(f"rate {rate:.2f} {values:<9} {len(data):5d} B  VSTOI {closed:.4f} "
                  f"(loss {base - closed:+.4f}; open loop {opened:.4f})  "
                  f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
    return rows


def write(rows: list[dict]) -> None:
    tmp = CSV.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        wr = csv.DictWriter(fh, FIELDS, lineterminator="\n")
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(CSV)


def table(path: Path = CSV) -> str:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = ("rate", "values", "bytes", "VSTOI", "loss vs unpruned", "loss vs pruned",
              "open loop loss")
    lines = [(f"{float(r['rate']):.0%}", r["values"], r["bytes"], f"{float(r['vstoi']):.4f}",
              f"{float(r['loss_vs_unpruned']):+.4f}", f"{float(r['loss_vs_pruned']):+.4f}",
              f"{float(r['open_loop_loss_vs_unpruned']):+.4f}") for r in rows]
    base = float(rows[0]["vstoi_float64_unpruned"])
    return "\n".join([f"Unpruned float64 model: test VSTOI {base:.4f} (112 items).", "",
                      simple_table(header, lines)])


if __name__ == "__main__":
    if "--table" not in sys.argv:
        write(run())
    print(table())
