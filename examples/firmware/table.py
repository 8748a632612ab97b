"""The README's firmware table, printed from ``examples/firmware/figures.json`` (run.py writes it).

    python examples/firmware/table.py
"""
from __future__ import annotations

import json
from pathlib import Path

from pa_ci.rst import simple_table

HERE = Path(__file__).resolve().parent


def main() -> None:
    d = json.loads((HERE / "figures.json").read_text())
    head = ("part", "values", "code B", "weights B", "flash B", "of 32 kB", "state B (double/float)",
            "MACs/frame", "exp/frame")
    rows = []
    for b in d["builds"]:
        dbl, flt = b["double"], b["float"]
        state = lambda x: x["decoder_state_bytes"] + x["encoder_state_bytes"]  # noqa: E731
        macs = b["macs_per_frame"]
        rows.append((b["part"], b["values"], str(dbl["code_bytes"]), str(dbl["rodata_bytes"]),
                     str(dbl["flash_bytes"]), f"{100 * dbl['flash_budget_fraction']:.0f} %",
                     f"{state(dbl)} / {state(flt)}",
                     str(macs["macs"]) + (f" (+{macs['scale_multiplies']} scale)" if macs["scale_multiplies"] else ""),
                     str(macs["exp"])))
    print(simple_table(head, rows))
    print(f"\nCompiler flags: {d['builds'][0]['double']['flags']} (x86-64 code bytes; weights are "
          "the same on any target).")


if __name__ == "__main__":
    main()
