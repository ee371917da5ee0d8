#!/usr/bin/env python3
"""Interleaved CPU forward sweep: candle (multishap's models) against PyTorch.

Runs `--rounds` rounds; each round runs every leg once over the same models and
batches, in an order that alternates between rounds (so a slow drift of the VM
does not favour one side):

- candle:      `cargo test --release --bench engine_speed -- --ignored ... forward_throughput`
               (the bench applies the `multishap` binary's allocator setting itself)
- torch:       `scripts/bench_torch.py` (PyTorch + transformers, glibc's defaults)
- torch-malloc: the same with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967295
               MALLOC_TOP_PAD_=268435456, i.e. PyTorch given the allocator setting candle has

Every record (one per leg, round, model, batch: the median of >= 3 timed calls after a
warm-up, same timing rule on both sides) goes to `<out>/records.jsonl`; the table of
per-round values, their medians and the candle / PyTorch ratios to `<out>/table.md`.

Example (the table in benches/RESULTS.md):
  python3 scripts/cpu_forward_sweep.py --rounds 3 --out target/cpu-sweep
Needs a PyTorch venv (`--python`, default /work/venvs/engine/bin/python) with torch and
transformers; run it on a quiet machine (nothing else on the cores).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MALLOC = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "4294967295",
    "MALLOC_TOP_PAD_": "268435456",
}
LEGS = ["candle", "torch", "torch-malloc"]


def run_leg(leg, args):
    env = dict(os.environ)
    for k in MALLOC:
        env.pop(k, None)
    if leg == "candle":
        env["MULTISHAP_BENCH_MODELS"] = ",".join(args.models)
        env["MULTISHAP_BENCH_BATCHES"] = ",".join(map(str, args.batches))
        cmd = ["cargo", "test", "--release", "--bench", "engine_speed", "--", "--ignored",
               "--nocapture", "--test-threads", "1", "forward_throughput"]
    else:
        if leg == "torch-malloc":
            env.update(MALLOC)
        cmd = [args.python, str(ROOT / "scripts" / "bench_torch.py"), "--threads",
               str(args.threads), "--batches", *map(str, args.batches), "--models", *args.models]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{leg} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    recs = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("BENCH "):
            line = line[len("BENCH "):]
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if "evals_per_s" not in rec:
            sys.exit(f"{leg}: a record without a timing: {rec}")
        recs.append(rec)
    expected = len(args.models) * len(args.batches)
    if len(recs) != expected:
        sys.exit(f"{leg}: expected {expected} records, got {len(recs)}")
    print(f"  {leg}: {len(recs)} records in {time.time() - t0:.0f} s", flush=True)
    return recs


def fmt(x):
    return f"{x:.2f}" if x < 100 else f"{x:.1f}"


def table(records, args):
    by = {}
    for r in records:
        by.setdefault((r["leg"], r["model"], r["batch"]), []).append((r["round"], r["evals_per_s"]))
    legs = [l for l in args.legs]
    head = "| model | batch | " + " | ".join(f"{l} (rounds)" for l in legs)
    head += " | candle / torch | candle / torch-malloc |" if "torch-malloc" in legs else " | candle / torch |"
    lines = [head, "|---|---:|" + "---:|" * (len(legs) + (2 if "torch-malloc" in legs else 1))]
    for model in args.models:
        for b in args.batches:
            cells, med = [], {}
            for leg in legs:
                vals = [v for _, v in sorted(by.get((leg, model, b), []))]
                med[leg] = statistics.median(vals)
                cells.append(f"{fmt(med[leg])} ({', '.join(fmt(v) for v in vals)})")
            row = f"| {model} | {b} | " + " | ".join(cells)
            row += f" | {med['candle'] / med['torch']:.2f}x"
            if "torch-malloc" in legs:
                row += f" | {med['candle'] / med['torch-malloc']:.2f}x"
            lines.append(row + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64, 128, 256])
    ap.add_argument("--models", nargs="+", default=["clip_image", "clip_text", "vilt_vqa"])
    ap.add_argument("--legs", nargs="+", default=LEGS, choices=LEGS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default="/work/venvs/engine/bin/python")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "cpu-sweep")
    args = ap.parse_args()
    if "candle" not in args.legs or "torch" not in args.legs:
        sys.exit("--legs needs candle and torch (the ratio is the figure)")
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "records.jsonl"
    records = []
    with open(log, "w") as f:
        for rnd in range(1, args.rounds + 1):
            order = args.legs if rnd % 2 else list(reversed(args.legs))
            load = os.getloadavg()[0]
            print(f"round {rnd}: {' -> '.join(order)} (load {load:.2f})", flush=True)
            for leg in order:
                for rec in run_leg(leg, args):
                    rec.update(leg=leg, round=rnd, load_before=load)
                    records.append(rec)
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
    md = table(records, args)
    (args.out / "table.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
