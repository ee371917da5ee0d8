#!/usr/bin/env python3
"""Seconds per explained sample at equal accuracy: the reference procedure
(the paper's per-pair stratified estimator, one coalition per size, batch 1)
versus multishap's estimators (batched), end to end through the `multishap run`
binary on a shipped demo model: --model vilt (demo ViLT VQA, the one-shape
questions of examples/shapes; ours = shared-stratified) or --model clip (demo
CLIP retrieval, the first captions of examples/shapes; ours = shared-stratified,
dual-encoder and dual-exact-text).

Steps (each `run` writes results.jsonl; `seconds` there is the estimator's wall
time per sample: masking, model calls and arithmetic, not model loading):
1. ground truth per sample: shared-stratified at --gt-budget evaluations; its own
   variance is removed from every MSE below (unbiased estimators, independent
   seeds: E[(est - gt)^2] = MSE(est) + Var(gt), Var(gt) = mean stderr^2);
2. the reference: per-pair-stratified, draws = all-sizes (4 (d-1) evaluations per
   pair), [batch] max_batch = 1;
3. ours at a few draw counts K; the K with the reference's MSE is
   interpolated log-log between the two runs that bracket it (MSE falls faster
   than 1 / budget at small K, so a global 1 / budget fit overshoots), then run
   with that many draws with fresh seeds: its measured MSE and seconds are the figure. Ours' MSE
   is averaged over --ours-seeds seeds (its errors are correlated across pairs).
Runs whose results.jsonl already holds every sample are reused (--fresh to redo).

CLIP: the reference code calls the whole model once per joint coalition (both
towers, batch 1), while our engine encodes each distinct image / text coalition
once (a cache), so running the reference procedure through the engine would
under-count its cost. Its seconds are therefore extrapolated: its joint
evaluations x (image + text tower forward at batch 1), both forwards timed by
`multishap speed --model models/demo-clip --batches 1` with the sample's text
length (best of three timings). Its estimates (and so its MSE) are the reference procedure's exactly.

--shortest-edge N runs the model on images resized to N pixels (a derived
model folder in <out>/model: links to the shipped files and a copy of
preprocessor_config.json with size.shortest_edge = N; ViLT interpolates its
position embeddings). 192 gives the demo ViLT a 12 x 12 patch grid, the real
ViLT-B/32's number of image players (d = 144 + words).

--grid G makes the image players a G x G grid of pixel boxes instead of the
model's patches (7 gives the demo CLIP, whose 96-pixel images have 6 x 6
patches, CLIP-B/32's 49 image players).

Usage: scripts/bench_end_to_end.py [--model vilt|clip] [--bin target/release/multishap]
       [--samples 3] [--gt-budget 262144] [--out target/bench-e2e[-clip]]
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


MODELS = {
    "vilt": {
        "path": "models/demo-vilt-vqa",
        "manifest": "manifest.jsonl",
        "scorer": '[scorer]\nvqa = "logit"\ntarget = "predicted"\n',
        "ours": ["shared-stratified"],
    },
    "clip": {
        "path": "models/demo-clip",
        "manifest": "captions.jsonl",
        "scorer": '[scorer]\nretrieval = "cosine"\n',
        "ours": ["shared-stratified", "dual-encoder", "dual-exact-text"],
    },
}


def derived_model(spec, shortest_edge, out):
    """The shipped model folder, or a copy of it (links) whose image
    processor resizes to `shortest_edge` pixels."""
    src = ROOT / spec["path"]
    if shortest_edge is None:
        return src
    dst = out / "model"
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        link = dst / f.name
        if f.name != "preprocessor_config.json" and not link.exists():
            link.symlink_to(f.resolve())
    cfg = json.loads((src / "preprocessor_config.json").read_text())
    cfg["size"] = {"shortest_edge": shortest_edge}
    (dst / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return dst


def write_config(path, model, spec, estimator, draws, max_batch, grid=None):
    draws_line = f'draws = "{draws}"' if isinstance(draws, str) else f"draws = {draws}"
    grid_line = f"grid = {{ rows = {grid}, cols = {grid} }}\n" if grid else ""
    path.write_text(
        f'[model]\npath = "{model}"\n[estimator]\nname = "{estimator}"\n{draws_line}\nseed = 0\n'
        f'[masking.image]\n{grid_line}baseline = {{ kind = "zero" }}\n[masking.text]\nmode = "mask"\n'
        + spec["scorer"]
        + f"[batch]\nmax_batch = {max_batch}\nmemory_budget_mib = 1024\n"
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
    errors = out / "errors.jsonl"
    if errors.is_file() and errors.read_text().strip():
        raise SystemExit(f"{out}: samples failed (a figure over fewer samples is not comparable):\n"
                         + errors.read_text())
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


def equal_mse_draws(runs, target):
    """Draws K at which MSE = target, log-log interpolated (MSE vs K) between
    the runs that bracket it (extrapolated from the nearest two when none do).
    Draws, not one budget for all samples: a draw costs each sample what its
    size needs (a fixed budget would starve long captions of dual-exact-text,
    whose 2^n text passes come first)."""
    pts = sorted((r["draws"], r["mse"]) for r in runs if r["mse"] > 0)
    pairs = list(zip(pts, pts[1:]))
    pick = next(((a, b) for a, b in pairs if b[1] <= target <= a[1]), None)
    if pick is None:
        pick = pairs[-1] if target < pts[-1][1] else pairs[0]
    (k0, m0), (k1, m1) = pick
    slope = (math.log(m1) - math.log(m0)) / (math.log(k1) - math.log(k0))
    return max(2, math.ceil(k0 * math.exp((math.log(target) - math.log(m0)) / slope)))


def per_sample(recs, key):
    return sum(r[key] for r in recs.values()) / len(recs)


def batch1_seconds(binary, model, text_len, out, repeats=3):
    """Seconds of one image + one text forward at batch 1 (CLIP), timed by
    `multishap speed` on the model itself, with this text length. A forward of
    the demo model takes ~1 ms and its timing swings up to 3x with this VM's
    load, so each tower's time is the best of `repeats` timings: the fastest
    reference, the conservative speed-up."""
    best = {}
    for i in range(repeats):
        f = out / f"speed-b1-len{text_len}-r{i}.jsonl"
        if FRESH or not f.is_file():
            subprocess.run([str(binary), "speed", "--model", str(model), "--batches", "1",
                            "--text-len", str(text_len), "--min-seconds", "2", "--out", str(f)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for r in (json.loads(l) for l in f.read_text().splitlines() if l.strip()):
            if r["kind"] == "throughput":
                best[r["tower"]] = min(best.get(r["tower"], math.inf), r["seconds_per_batch"])
    return sum(best.values())


def seed_means(runs, truth):
    """Per-sample evaluations, MSE and seconds, averaged over seed runs."""
    n = len(runs)
    out = {"seeds": n,
           "evaluations": sum(per_sample(r, "evaluations") for r in runs) / n,
           "mse": sum(mse_vs_truth(r, truth) for r in runs) / n,
           "seconds": sum(per_sample(r, "seconds") for r in runs) / n}
    # coalitions the model actually encoded (distinct ones; image and text
    # towers apart on CLIP): what the seconds at another model size scale with
    for side in ("image", "text", "joint"):
        rows = [rec.get("model_rows", {}).get(side) for r in runs for rec in r.values()]
        if rows and all(v is not None for v in rows):
            out[f"model_rows_{side}"] = sum(rows) / len(rows)
    return out


def fit_ours(a, binary, cfg, manifest, out, truth, name, ref_mse):
    """Ours at a few draw counts, then at the interpolated equal-MSE draws."""
    runs = []
    # ours' errors are correlated across pairs (shared coalitions): average seeds
    seeds = range(2, 2 + a.ours_seeds)
    for k in [int(x) for x in a.ours_draws.split(",")]:
        rs = [run(binary, cfg, manifest, out / f"{name}-k{k}-s{s}",
                  ["--draws", str(k), "--seed", str(s)])[0] for s in seeds]
        runs.append({"draws": k, **seed_means(rs, truth)})
    draws = equal_mse_draws(runs, ref_mse)
    eqs = [run(binary, cfg, manifest, out / f"{name}-equal-k{draws}-s{s}",
               ["--draws", str(draws), "--seed", str(100 + s)])[0] for s in seeds]
    equal = {"draws": draws, **seed_means(eqs, truth)}
    return runs, equal


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="vilt")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "multishap"))
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--ids", default=None, help="comma-separated sample ids (instead of the first --samples)")
    ap.add_argument("--shortest-edge", type=int, default=None,
                    help="resize images to this many pixels (192: a 12 x 12 grid on the demo ViLT)")
    ap.add_argument("--grid", type=int, default=None,
                    help="image players on a G x G grid of pixel boxes (default: the model's patches; "
                         "7 gives the demo CLIP CLIP-B/32's 49 image players)")
    ap.add_argument("--gt-budget", type=int, default=262144)
    ap.add_argument("--ours-draws", default="2,8,16,32,64")
    ap.add_argument("--ours-seeds", type=int, default=4, help="seeds averaged per budget")
    ap.add_argument("--reference-batch", type=int, default=1,
                    help="max_batch of the reference run (1 = as the reference code; larger only "
                         "when its seconds are not wanted: same estimates, batch size never "
                         "changes values beyond 1e-5)")
    ap.add_argument("--fresh", action="store_true", help="redo runs whose results exist")
    ap.add_argument("--out", default=None, help="default target/bench-e2e (vilt), target/bench-e2e-clip")
    a = ap.parse_args()
    global FRESH
    FRESH = a.fresh
    spec = MODELS[a.model]
    out = Path(a.out or ROOT / "target" / ("bench-e2e" if a.model == "vilt" else "bench-e2e-clip")).resolve()
    out.mkdir(parents=True, exist_ok=True)

    src = ROOT / "examples" / "shapes" / spec["manifest"]
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    if a.model == "vilt":
        # questions about one shape (they have pointing masks): the interesting cases
        rows = [r for r in rows if "pointing_mask" in r]
    if a.ids:
        wanted = a.ids.split(",")
        rows = [r for r in rows if r["id"] in wanted]
    else:
        rows = rows[: a.samples]
    model = derived_model(spec, a.shortest_edge, out)
    manifest = out / "manifest.jsonl"
    with manifest.open("w") as f:
        for r in rows:
            entry = {"id": r["id"], "image": str(src.parent / r["image"]), "text": r["text"]}
            if "answer" in r:
                entry["answer"] = r["answer"]
            f.write(json.dumps(entry) + "\n")

    ref_cfg = out / "reference.toml"
    write_config(ref_cfg, model, spec, "per-pair-stratified", "all-sizes", a.reference_batch, a.grid)
    cfgs = {}
    for name in spec["ours"]:
        cfgs[name] = out / f"{name}.toml"
        write_config(cfgs[name], model, spec, name, 1, 256, a.grid)

    truth, _ = run(a.bin, cfgs["shared-stratified"], manifest, out / "truth",
                   ["--budget", str(a.gt_budget), "--seed", "1000"])
    ref, ref_wall = run(a.bin, ref_cfg, manifest, out / "reference", ["--seed", "1"])
    ref_mse = mse_vs_truth(ref, truth)
    ref_secs = per_sample(ref, "seconds")
    ref_note = f"measured (max_batch {a.reference_batch})"
    if a.model == "clip":
        per = []
        for sid, r in ref.items():
            per.append(r["evaluations"] * batch1_seconds(a.bin, model, len(r["tokens"]) + 2, out))
        ref_secs = sum(per) / len(per)
        ref_note = "extrapolated: joint evaluations x (image + text forward at batch 1)"

    ours = {}
    for name, cfg in cfgs.items():
        runs, equal = fit_ours(a, a.bin, cfg, manifest, out, truth, name, ref_mse)
        ours[name] = {"fit_runs": runs, "equal_accuracy": equal,
                      "speedup_seconds": ref_secs / equal["seconds"],
                      "mse_ratio_ours_over_reference": equal["mse"] / ref_mse}
    summary = {
        "model": spec["path"],
        "shortest_edge": a.shortest_edge,
        "grid": a.grid,
        "samples": [r["id"] for r in rows],
        "players": {sid: [len(r["sii"]), len(r["sii"][0])] for sid, r in truth.items()},
        "ground_truth_budget": a.gt_budget,
        "reference": {"estimator": f"per-pair-stratified, draws = all-sizes, max_batch {a.reference_batch}",
                      "evaluations": per_sample(ref, "evaluations"), "mse": ref_mse,
                      "seconds": ref_secs, "seconds_are": ref_note},
        "ours": ours,
        "threads": os.environ.get("RAYON_NUM_THREADS", "default"),
        "load_average": os.getloadavg(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| Procedure | Evaluations / sample | MSE vs ground truth | Seconds / sample |",
             "|---|---|---|---|"]
    r = summary["reference"]
    lines.append(f"| reference: per-pair stratified, all sizes, batch 1 | {r['evaluations']:.0f} | {r['mse']:.3e} | {r['seconds']:.2f} |")
    for name, o in ours.items():
        for f in o["fit_runs"]:
            lines.append(f"| ours: {name}, K = {f['draws']} | {f['evaluations']:.0f} | {f['mse']:.3e} | {f['seconds']:.2f} |")
        e = o["equal_accuracy"]
        lines.append(f"| ours: {name} at the reference's MSE (K = {e['draws']}) | {e['evaluations']:.0f} | {e['mse']:.3e} | {e['seconds']:.2f} |")
    print("\n".join(lines))
    print(f"reference seconds: {ref_note}")
    for name, o in ours.items():
        print(f"{name}: speed-up at equal accuracy {o['speedup_seconds']:.1f}x "
              f"(MSE ratio ours/reference {o['mse_ratio_ours_over_reference']:.2f})")
    print(f"load average {summary['load_average']}")


if __name__ == "__main__":
    main()
