#!/usr/bin/env python3
"""CLIP-B/32 seconds per explained sample on this CPU, reference procedure vs
ours, from two measurements (no trained CLIP-B/32 here, so not one run end to end):

1. coalition counts at equal accuracy, from `bench_end_to_end.py --model clip`
   (the demo CLIP with CLIP-B/32's number of players, e.g. `--grid 7` = 49
   patches): the reference's joint evaluations and, per estimator of ours, the
   image and text coalitions it encoded (`model_rows_*` of its equal-accuracy run);
2. forward speeds of CLIP-B/32 at its real size, from `cpu_forward_sweep.py`:
   the reference = PyTorch at batch 1, one image and one text forward per joint
   evaluation (the faster of PyTorch with and without the allocator setting,
   so the reference is never slowed by our choice); ours = candle at the
   engine's CPU batch sizes (image tower 64, text tower 256 by default).

Both sides are paired per sweep round (same window of the VM); the speed-up is
printed per round and as the median over rounds.

Usage: python3 scripts/clip_b32_estimate.py --e2e target/bench-e2e-clip-g7/summary.json \
           --sweep target/cpu-sweep/records.jsonl [--image-batch 64] [--text-batch 256]
"""
import argparse
import json
import statistics
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2e", type=Path, required=True)
    ap.add_argument("--sweep", type=Path, required=True)
    ap.add_argument("--image-batch", type=int, default=64)
    ap.add_argument("--text-batch", type=int, default=256)
    a = ap.parse_args()
    e2e = json.loads(a.e2e.read_text())
    speed = {}
    for line in a.sweep.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            speed[(r["round"], r["leg"], r["model"], r["batch"])] = r["evals_per_s"]
    rounds = sorted({k[0] for k in speed})
    ref_joint = e2e["reference"]["evaluations"]
    print(f"players (patches, words) per sample: {sorted(set(map(tuple, e2e['players'].values())))}")
    print(f"reference: {ref_joint:.0f} joint evaluations / sample, MSE {e2e['reference']['mse']:.3e}")

    def fwd(rnd, leg, model, batch):
        v = speed.get((rnd, leg, model, batch))
        if v is None:
            raise SystemExit(f"the sweep has no {leg} {model} batch {batch} in round {rnd}")
        return v

    for name, o in e2e["ours"].items():
        eq = o["equal_accuracy"]
        img, txt = eq.get("model_rows_image"), eq.get("model_rows_text")
        if img is None or txt is None:
            raise SystemExit(f"{name}: no model_rows in the summary (rerun bench_end_to_end.py)")
        ups = []
        for rnd in rounds:
            torch_img = max(fwd(rnd, l, "clip_image", 1) for l in ("torch", "torch-malloc")
                            if (rnd, l, "clip_image", 1) in speed)
            torch_txt = max(fwd(rnd, l, "clip_text", 1) for l in ("torch", "torch-malloc")
                            if (rnd, l, "clip_text", 1) in speed)
            ref_s = ref_joint * (1 / torch_img + 1 / torch_txt)
            ours_s = img / fwd(rnd, "candle", "clip_image", a.image_batch) + \
                txt / fwd(rnd, "candle", "clip_text", a.text_batch)
            ups.append((ref_s, ours_s, ref_s / ours_s))
        per = ", ".join(f"{u:.0f}x" for _, _, u in ups)
        med = statistics.median(u for _, _, u in ups)
        print(f"{name}: K = {eq['draws']}, MSE {eq['mse']:.3e} ({eq['mse'] / e2e['reference']['mse']:.2f}x the "
              f"reference's), {img:.0f} image + {txt:.0f} text coalitions; reference "
              f"{statistics.median(r for r, _, _ in ups):.0f} s vs ours {statistics.median(s for _, s, _ in ups):.0f} s"
              f" per sample: {med:.0f}x (rounds: {per}; {ref_joint / img:.1f}x fewer image passes); "
              f"~{med * e2e['reference']['mse'] / eq['mse']:.0f}x scaled to equal MSE (MSE ~ 1 / K)")


if __name__ == "__main__":
    main()
