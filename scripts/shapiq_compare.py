#!/usr/bin/env python3
"""Run shapiq's SII approximators on the games written by
`cargo bench --bench estimators` (target/bench-games/) at the same budgets and
print the same metrics (MSE vs exact cross-modal SII, Precision@10, Spearman,
seconds) as a markdown table.

Usage (own venv, e.g. python3 -m venv /work/venvs/shapiq && pip install shapiq):
    python scripts/shapiq_compare.py [--dir target/bench-games] [--seeds 3]
        [--budgets 1000,4000,16000,64000] [--games d15,d20,d57,d152]
        [--timeout 120]
The Moebius games (d57, d152) are evaluated from their terms; a run that
exceeds --timeout seconds is recorded as a timeout.
"""
import argparse
import json
import signal
import time

import numpy as np
from scipy.stats import spearmanr
from shapiq.approximator import SHAPIQ, SVARMIQ, KernelSHAPIQ, PermutationSamplingSII

GAMES = {"d15": (12, 3), "d20": (16, 4), "d57": (49, 8), "d152": (144, 8)}
APPROX = {
    "KernelSHAPIQ": lambda n, s: KernelSHAPIQ(n, max_order=2, index="SII", random_state=s),
    "SVARMIQ": lambda n, s: SVARMIQ(n, max_order=2, index="SII", random_state=s),
    "SHAPIQ": lambda n, s: SHAPIQ(n, max_order=2, index="SII", random_state=s),
    "PermutationSamplingSII": lambda n, s: PermutationSamplingSII(n, max_order=2, index="SII", random_state=s),
}


class Timeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise Timeout()


def table_game(values, d):
    powers = (1 << np.arange(d)).astype(np.int64)

    def game(coalitions):
        c = np.atleast_2d(np.asarray(coalitions, dtype=np.int64))
        return values[c @ powers]

    return game


def moebius_game(terms, d):
    def game(coalitions):
        c = np.atleast_2d(np.asarray(coalitions, dtype=bool))
        out = np.zeros(c.shape[0])
        for members, coef in terms:
            out += coef * c[:, members].all(axis=1)
        return out

    return game


def metrics(est, truth):
    mse = float(np.mean((est - truth) ** 2))
    top = lambda v: set(np.argsort(-np.abs(v), kind="stable")[:10])
    p10 = len(top(est) & top(truth)) / 10
    rho = float(spearmanr(est, truth).correlation)
    return mse, p10, rho


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="target/bench-games")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", default="1000,4000,16000,64000")
    ap.add_argument("--games", default="d15,d20,d57,d152")
    ap.add_argument("--approximators", default=",".join(APPROX))
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    budgets = [int(b) for b in args.budgets.split(",")]
    results = []
    for key in args.games.split(","):
        m, n = GAMES[key]
        d = m + n
        truth = np.load(f"{args.dir}/{key}_sii.npy")
        if key in ("d15", "d20"):
            game = table_game(np.load(f"{args.dir}/{key}_values.npy"), d)
        else:
            with open(f"{args.dir}/{key}_moebius.json") as f:
                game = moebius_game([(np.array(t, dtype=int), c) for t, c in json.load(f)], d)
        print(f"\n### {key} (m={m}, n={n}), shapiq, {args.seeds} seeds\n")
        print("| approximator | budget | MSE | P@10 | Spearman | seconds |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in args.approximators.split(","):
            timed_out = False
            for budget in budgets:
                if timed_out:
                    print(f"| {name} | {budget} | timeout | | | |")
                    continue
                rows = []
                try:
                    for seed in range(args.seeds):
                        approx = APPROX[name](d, seed)
                        signal.alarm(args.timeout)
                        t0 = time.time()
                        iv = approx.approximate(budget, game)
                        secs = time.time() - t0
                        signal.alarm(0)
                        est = np.array([iv[(i, m + j)] for i in range(m) for j in range(n)])
                        rows.append((*metrics(est, truth), secs))
                except Timeout:
                    timed_out = True
                    print(f"| {name} | {budget} | timeout (> {args.timeout}s per run) | | | |", flush=True)
                    continue
                mse, p10, rho, secs = np.mean(np.array(rows), axis=0)
                print(f"| {name} | {budget} | {mse:.3e} | {p10:.2f} | {rho:.3f} | {secs:.3f} |", flush=True)
                results.append(dict(game=key, approximator=name, budget=budget, mse=mse, p10=p10, spearman=rho, seconds=secs))
    tag = f"{args.games}_{args.approximators}".replace(",", "-")
    with open(f"{args.dir}/shapiq_results_{tag}.json", "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
