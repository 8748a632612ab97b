"""The README's speed table, regenerated from a ``make bench`` JSON (default: the newest one).

Run: ``.venv/bin/python tests/bench_table.py [benchmarks/results/spsa-....json]``; paste the
output into README.rst's "Speed" section. Every figure comes from the file; nothing is typed in.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pa_ci.rst import simple_table

ROOT = Path(__file__).resolve().parents[1]


def newest() -> Path:
    files = sorted((ROOT / "benchmarks" / "results").glob("spsa-*.json"))
    if not files:
        raise SystemExit("error: no benchmarks/results/spsa-*.json; run make bench first")
    return files[-1]


def table(r: dict) -> str:
    o1, o2, p, t = r["ours"]["1"], r["ours"].get("2"), r["plain_1thread"], r.get("torch")
    ms = lambda s: f"{s * 1e3:.0f} ms"  # noqa: E731
    rows = [("one SPSA iteration (2 thetas)", f"{p['iteration_s']:.2f} s", ms(o1["iteration_s"]),
             ms(o2["iteration_s"]) if o2 else "-"),
            ("one PA iteration (4 thetas)", "-", ms(o1["pa_iteration_s"]),
             ms(o2["pa_iteration_s"]) if o2 else "-"),
            *([("one SPSA iteration, --precision float32", "-", ms(o1["float32_iteration_s"]),
                ms(o2["float32_iteration_s"]) if o2 else "-"),
               ("one PA iteration, --precision float32", "-", ms(o1["float32_pa_iteration_s"]),
                ms(o2["float32_pa_iteration_s"]) if o2 else "-"),
               ("FRAE forward (kept maxima), 1 theta, float32", "-",
                ms(o1["float32_frae_forward_1theta_s"]),
                ms(o2["float32_frae_forward_1theta_s"]) if o2 else "-")]
              if "float32_iteration_s" in o1 else []),
            ("FRAE forward, 1 theta", f"{p['frae_forward_1theta_s']:.2f} s",
             ms(o1["frae_forward_1theta_s"]), ms(o2["frae_forward_1theta_s"]) if o2 else "-"),
            ("VSTOI side, per theta", "-", ms(o1["vstoi_side_per_theta_s"]),
             ms(o2["vstoi_side_per_theta_s"]) if o2 else "-")]
    if t:
        rows.append(("PyTorch FRAE (length-sorted), 1 theta", "-", f"{t['frae_forward_1thread_s']:.2f} s",
                     f"{t['frae_forward_2thread_s']:.2f} s"))
    head = ("", "plain path, 1 thread", "ours, 1 thread", "ours, 2 threads")
    ra, pr = r["ratios"], r["projected"]
    out = [simple_table(head, rows), ""]
    out.append(f"Ratios: plain / ours at 1 thread {ra['plain_over_ours_iteration_1thread']:.0f}x, "
               f"plain (1 thread) / ours (2 threads) {ra['plain1_over_ours2_iteration']:.0f}x; "
               f"2-thread scaling {ra['scaling_iteration_2_over_1']:.2f}x (iteration), "
               f"{ra['scaling_frae_2_over_1']:.2f}x (FRAE)"
               + (f"; PyTorch / ours (FRAE) {ra['torch_over_ours_frae_1thread']:.1f}x at 1 thread, "
                  f"{ra['torch_over_ours_frae_2thread']:.1f}x at 2" if t else "") + ".")
    g = r["gemm_gflops"]
    best = o2 or o1
    out.append(f"Machine limit: float64 GEMM {g['1']:.0f} GFLOP/s on 1 thread"
               + (f", {g['2']:.0f} on 2" if g.get("2") else "")
               + f"; the FRAE ({r['frae_macs_per_frame']:.0f} multiply-adds per frame) runs at "
               f"{best['frae_gflops']:.1f} GFLOP/s, {100 * ra['frae_fraction_of_gemm_peak']:.0f} % of it.")
    out.append(f"Projected: the paper's PA run (1000 PA + 7000 fine-tuning iterations) "
               f"{pr['paper_pa_run_h'] * 60:.0f} min, its baseline (8000) {pr['paper_baseline_run_h'] * 60:.0f} min, "
               f"the 19-rate x 2-scope x 2-method sweep {pr['paper_sweep_19_rates_2_scopes_2_methods_h']:.0f} h "
               f"(plain path: {pr['plain_paper_baseline_run_h']:.0f} h per baseline run)"
               + (f"; with --precision float32 a PA run {pr['paper_pa_run_float32_h'] * 60:.0f} min, "
                  f"a baseline run {pr['paper_baseline_run_float32_h'] * 60:.0f} min"
                  if "paper_pa_run_float32_h" in pr else "") + ".")
    m = r["machine"]
    out.append(f"Measured {r['utc'][:10]} on {m['cpu']} ({m['logical_cpus']} logical CPUs), "
               f"medians of {r['repeats']['ours']} (ours) and {r['repeats']['plain']} (plain) runs, "
               f"commit {str(m['commit'])[:7]}{' (dirty)' if m.get('dirty_worktree') else ''}.")
    return "\n".join(out)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else newest()
    print(f".. from {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")
    print(table(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
