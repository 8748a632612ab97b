"""VSTOI and acoustic STOI of one utterance in noise, against the SNR (the library in 30 lines).

For each SNR the speech is mixed with a noise, coded by ACE, and scored two ways against the
clean speech: STOI of the mixture itself (what a normal-hearing listener gets) and VSTOI, STOI of
the sine-vocoded ACE pattern (a proxy for what a CI user gets). One ``Reference`` holds the
clean side for all SNRs. Writes a CSV and, with matplotlib, a PNG.

Usage: ``python examples/vstoi_vs_snr.py [SPEECH] [NOISE] [--out DIR]`` (defaults: bundled files).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from pa_ci import Reference

from pa_ci.chain import ace
from pa_ci.chain.ace import default_params
from pa_ci.chain.audio import read_audio, resample
from pa_ci.data.mixing import make_mixture, noise_segment
from pa_ci.chain.vocoder import envelopes

BUNDLED = Path(__file__).resolve().parents[1] / "pa_ci" / "bundled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech", nargs="?", default=BUNDLED / "speech/cmu_arctic/cmu_arctic_us_axb_a0006.wav")
    parser.add_argument("noise", nargs="?", default=BUNDLED / "noise/babble_librispeech_8talker.flac")
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    args = parser.parse_args()

    p = default_params()
    clean = resample(*read_audio(args.speech), p.fs)
    noise = resample(*read_audio(args.noise), p.fs)
    reference = Reference(clean, int(p.fs))  # the clean side, computed once
    rows = []
    for snr in range(-10, 31, 5):
        mixture, _ = make_mixture(clean, noise_segment(noise, 0, clean.size), snr)
        pattern = ace(mixture, p.fs, p)
        v = reference.vstoi_envelopes(envelopes(pattern, p), p.centre_frequencies, p.hop)
        rows.append((snr, reference.stoi(mixture), v))
        print(f"SNR {snr:+3d} dB: STOI of the mixture {rows[-1][1]:.3f}, VSTOI of its ACE pattern {v:.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "vstoi_vs_snr.csv", "w", newline="") as f:
        csv.writer(f).writerows([("snr_db", "stoi_mixture", "vstoi_ace"), *rows])
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(install matplotlib for the plot)")
        return
    snr, s, v = np.array(rows).T
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.plot(snr, s, "o-", label="STOI of the mixture")
    ax.plot(snr, v, "s-", label="VSTOI of its ACE pattern")
    ax.set(xlabel="SNR (dB)", ylabel="score", ylim=(0.3, 1.0),
           title=f"{Path(args.speech).name} in {Path(args.noise).stem}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(args.out / "vstoi_vs_snr.png", dpi=90)
    print(f"wrote {args.out / 'vstoi_vs_snr.csv'} and {args.out / 'vstoi_vs_snr.png'}")


if __name__ == "__main__":
    main()
