#!/usr/bin/env python3
"""Seconds per explained sample at equal accuracy: the reference procedure
(the paper's per-pair stratified estimator, one coalition per size, batch 1)
versus multishap's default (shared-stratified, batched), end to end through
the `multishap run` binary on the shipped demo ViLT model.

Steps (each `run` writes results.jsonl; `seconds` there is the estimator's wall
time per sample: masking, model calls and arithmetic, not model loading):
1. ground truth per sample: shared-stratified at --gt-budget evaluations; its own
   variance is removed from every MSE below (unbiased estimators, independent
   seeds: E[(est - gt)^2] = MSE(est) + Var(gt), Var(gt) = mean stderr^2);
2. the reference: per-pair-stratified, draws = all-sizes (4 (d-1) evaluations per
   pair), [batch] max_batch = 1;
3. ours at a few budgets (K draws); the budget with the reference's MSE is
   interpolated log-log between the two runs that bracket it (MSE falls faster
   than 1 / budget at small K, so a global 1 / budget fit overshoots), then run
   at that budget with fresh seeds: its measured MSE and seconds are the figure. Ours' MSE
   is averaged over --ours-seeds seeds (its errors are correlated across pairs).
Runs whose results.jsonl already holds every sample are reused (--fresh to redo).

Usage: scripts/bench_end_to_end.py [--bin target/release/multishap] [--samples 3]
       [--gt-budget 262144] [--out target/bench-e2e]
Needs only the Python standard library. Prints a markdown table and writes
<out>/summary.json.
"""
import argparse
import json
import math
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_results(path):
    recs = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[r["id"]] = r
    return recs


def flat(rows):
    return [v for row in rows for v in row]


def write_config(path, estimator, draws, max_batch):
    model = ROOT / "models" / "demo-vilt-vqa"
    draws_line = f'draws = "{draws}"' if isinstance(draws, str) else f"draws = {draws}"
    path.write_text(
        f'[model]\npath = "{model}"\n[estimator]\nname = "{estimator}"\n{draws_line}\nseed = 0\n'
        '[masking.image]\nbaseline = { kind = "zero" }\n[masking.text]\nmode = "mask"\n'
        '[scorer]\nvqa = "logit"\ntarget = "predicted"\n'
        f"[batch]\nmax_batch = {max_batch}\nmemory_budget_mib = 1024\n"
    )


FRESH = False


def run(binary, config, manifest, out, extra):
    n = sum(1 for l in Path(manifest).read_text().splitlines() if l.strip())
    done = out / "results.jsonl"
    if not FRESH and done.is_file():
        recs = read_results(done)
        if len(recs) == n:
            return recs, 0.0
    if out.exists():
        for f in out.iterdir():
            f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), "run", "--config", str(config), "--manifest", str(manifest),
           "--out", str(out)] + extra
    t = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return read_results(out / "results.jsonl"), time.time() - t


def mse_vs_truth(recs, truth):
    """Per-sample MSE corrected for the ground truth's own variance, averaged."""
    vals = []
    for sid, r in recs.items():
        g = truth[sid]
        est, gt = flat(r["sii"]), flat(g["sii"])
        gt_var = [s * s for s in flat(g["sii_stderr"]) if s is not None and math.isfinite(s)]
        raw = sum((a - b) ** 2 for a, b in zip(est, gt)) / len(est)
        vals.append(raw - (sum(gt_var) / len(gt_var) if gt_var else 0.0))
    return sum(vals) / len(vals)


def equal_mse_budget(runs, target):
    """Budget at which MSE = target, log-log interpolated between the runs
    that bracket it (extrapolated from the nearest two when none do)."""
    pts = sorted((r["evaluations"], r["mse"]) for r in runs if r["mse"] > 0)
    pairs = list(zip(pts, pts[1:]))
    pick = next(((a, b) for a, b in pairs if b[1] <= target <= a[1]), None)
    if pick is None:
        pick = pairs[-1] if target < pts[-1][1] else pairs[0]
    (b0, m0), (b1, m1) = pick
    slope = (math.log(m1) - math.log(m0)) / (math.log(b1) - math.log(b0))
    return max(1, math.ceil(b0 * math.exp((math.log(target) - math.log(m0)) / slope)))


def per_sample(recs, key):
    return sum(r[key] for r in recs.values()) / len(recs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "multishap"))
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--gt-budget", type=int, default=262144)
    ap.add_argument("--ours-draws", default="2,8,16,32,64")
    ap.add_argument("--ours-seeds", type=int, default=4, help="seeds averaged per budget")
    ap.add_argument("--fresh", action="store_true", help="redo runs whose results exist")
    ap.add_argument("--out", default=str(ROOT / "target" / "bench-e2e"))
    a = ap.parse_args()
    global FRESH
    FRESH = a.fresh
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    # questions about one shape (they have pointing masks): the interesting cases
    src = ROOT / "examples" / "shapes" / "manifest.jsonl"
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    rows = [r for r in rows if "pointing_mask" in r][: a.samples]
    manifest = out / "manifest.jsonl"
    with manifest.open("w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "image": str(src.parent / r["image"]),
                                "text": r["text"], "answer": r["answer"]}) + "\n")

    ours_cfg, ref_cfg = out / "ours.toml", out / "reference.toml"
    write_config(ours_cfg, "shared-stratified", 1, 256)
    write_config(ref_cfg, "per-pair-stratified", "all-sizes", 1)

    truth, _ = run(a.bin, ours_cfg, manifest, out / "truth",
                   ["--budget", str(a.gt_budget), "--seed", "1000"])
    ref, ref_wall = run(a.bin, ref_cfg, manifest, out / "reference", ["--seed", "1"])
    ref_mse = mse_vs_truth(ref, truth)
    lines = []
    ours_runs = []
    # ours' errors are correlated across pairs (shared coalitions): average seeds
    seeds = range(2, 2 + a.ours_seeds)
    for k in [int(x) for x in a.ours_draws.split(",")]:
        runs = [run(a.bin, ours_cfg, manifest, out / f"ours-k{k}-s{s}",
                    ["--draws", str(k), "--seed", str(s)])[0] for s in seeds]
        ours_runs.append({"draws": k, "seeds": len(runs),
                          "evaluations": sum(per_sample(r, "evaluations") for r in runs) / len(runs),
                          "mse": sum(mse_vs_truth(r, truth) for r in runs) / len(runs),
                          "seconds": sum(per_sample(r, "seconds") for r in runs) / len(runs)})
    budget = equal_mse_budget(ours_runs, ref_mse)
    eqs = [run(a.bin, ours_cfg, manifest, out / f"ours-equal-s{s}",
               ["--budget", str(budget), "--seed", str(100 + s)])[0] for s in seeds]
    eq = eqs[0]
    eq_mse = sum(mse_vs_truth(r, truth) for r in eqs) / len(eqs)
    eq_secs = sum(per_sample(r, "seconds") for r in eqs) / len(eqs)
    ref_secs = per_sample(ref, "seconds")
    summary = {
        "model": "models/demo-vilt-vqa",
        "samples": [r["id"] for r in rows],
        "players": {sid: [len(r["sii"]), len(r["sii"][0])] for sid, r in truth.items()},
        "ground_truth_budget": a.gt_budget,
        "reference": {"estimator": "per-pair-stratified, draws = all-sizes, max_batch 1",
                      "evaluations": per_sample(ref, "evaluations"), "mse": ref_mse,
                      "seconds": ref_secs},
        "ours_fit_runs": ours_runs,
        "ours_equal_accuracy": {"estimator": "shared-stratified, max_batch 256",
                                "budget": budget, "seeds": len(eqs),
                                "evaluations": per_sample(eq, "evaluations"),
                                "mse": eq_mse, "seconds": eq_secs},
        "speedup_seconds": ref_secs / eq_secs,
        "mse_ratio_ours_over_reference": eq_mse / ref_mse,
        "threads": os.environ.get("RAYON_NUM_THREADS", "default"),
        "load_average": os.getloadavg(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines.append("| Procedure | Evaluations / sample | MSE vs ground truth | Seconds / sample |")
    lines.append("|---|---|---|---|")
    r = summary["reference"]
    lines.append(f"| reference: per-pair stratified, all sizes, batch 1 | {r['evaluations']:.0f} | {r['mse']:.3e} | {r['seconds']:.2f} |")
    for o in ours_runs:
        lines.append(f"| ours: shared-stratified, K = {o['draws']} | {o['evaluations']:.0f} | {o['mse']:.3e} | {o['seconds']:.2f} |")
    e = summary["ours_equal_accuracy"]
    lines.append(f"| ours at the reference's MSE (budget {budget}) | {e['evaluations']:.0f} | {e['mse']:.3e} | {e['seconds']:.2f} |")
    print("\n".join(lines))
    print(f"speed-up at equal accuracy: {summary['speedup_seconds']:.1f}x "
          f"(MSE ratio ours/reference {summary['mse_ratio_ours_over_reference']:.2f}); "
          f"load average {summary['load_average']}")


if __name__ == "__main__":
    main()
