#!/usr/bin/env python3
"""Variance of the shared estimators by context size, from the raw values that
`cargo bench --bench size_strata` records (STRATA_PER_SIZE base coalitions of
every size 0..=d, each toggled at every patch and every token).

For every draw k and pair (i, j) it forms the same importance-weighted
discrete derivative z_k,ij as crates/multishap-core/src/estimators/shared.rs
(E[z] = SII when the base size is uniform on 0..=d), then splits each pair's
variance into within-size and between-size parts, pooled over pairs, and
prints the MSE (summed over pairs, per draw) that each base-size schedule
would have at K draws:
  iid       sizes drawn uniformly (estimator `shared`);
  permuted  sizes cycle through permutations of 0..=d (`shared-stratified`):
            a finite-population correction on the between-size part;
  neyman    sizes in B equal bins, draws per bin proportional to the bin's
            pooled spread (one allocation for all pairs), stratified mean.
Within-size variances are pooled over bins of adjacent sizes (STRATA_PER_SIZE
draws per size are too few on their own).

--simulate K,... then replays designs on the record itself (each size's draws
are the population of that size; truth = the mean of the per-size means):
the permuted schedule against a two-phase one (a fraction of the draws on the
permuted schedule, the rest allocated to geometric size bins in proportion to
each bin's root mean square of z over the first phase, estimate = the bins'
means weighted by their share of sizes), MSE per pair over --reps replays.

Usage: scripts/size_strata.py target/strata-q05.json [--bins 10] [--json out]
       [--simulate 32,64,128 --reps 400]
Needs numpy.
"""
import argparse
import json
import math

import numpy as np


def lbinom(a, b):
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def sii_weight(d, r):
    """SII weight of a context of size r (pairs): r! (d-r-2)! / (d-1)!."""
    return math.exp(math.lgamma(r + 1) + math.lgamma(d - r - 1) - math.lgamma(d))


def q_context(d, r, drop):
    """P(S minus a fixed set T of size `drop` equals one fixed set of size r),
    S of size uniform on 0..=d, uniform given its size (shared.rs)."""
    p = 1.0 / (d + 1)
    return sum(math.exp(lbinom(drop, t)) * p / math.exp(lbinom(d, r + t)) for t in range(drop + 1))


def weighted_derivatives(rec):
    m, n, d = rec["m"], rec["n"], rec["d"]
    sizes = np.array(rec["sizes"])
    k = len(sizes)
    v = np.asarray(rec["values"], dtype=np.float64).reshape(k, m + 1, n + 1)
    x = np.zeros((k, d))
    for a, members in enumerate(rec["bases"]):
        x[a, members] = 1.0
    sig = 1.0 - 2.0 * x
    raw = v[:, 1:, 1:] - v[:, 1:, :1] - v[:, :1, 1:] + v[:, :1, :1]
    delta = raw * sig[:, :m, None] * sig[:, None, m:]
    t = x[:, :m, None] + x[:, None, m:]  # 0, 1 or 2 of the pair in the base
    w = np.zeros((d + 1, 3))
    for s in range(d + 1):
        for tt in range(3):
            r = s - tt
            if 0 <= r <= d - 2:
                w[s, tt] = sii_weight(d, r) / q_context(d, r, 2)
    weight = w[sizes[:, None, None], t.astype(int)]
    return sizes, (delta * weight).reshape(k, m * n)


def simulate(sizes, z, d, budgets, reps, seed=0):
    rng = np.random.default_rng(seed)
    idx = [np.where(sizes == s)[0] for s in range(d + 1)]
    truth = np.stack([z[i].mean(0) for i in idx]).mean(0)

    def draw(s):
        return z[rng.choice(idx[s])]

    def permuted_sizes(k):
        out = []
        while len(out) < k:
            out += list(rng.permutation(d + 1))
        return out[:k]

    def permuted(k):
        return np.mean([draw(s) for s in permuted_sizes(k)], 0)

    def two_phase(k, bins, first):
        e = np.unique(np.round(np.geomspace(1, d + 2, bins + 1) - 1).astype(int))
        e[0], e[-1] = 0, d + 1
        nb = len(e) - 1
        share = np.diff(e) / (d + 1)
        k1 = int(k * first)
        by = [[] for _ in range(nb)]
        for s in permuted_sizes(k1):
            by[np.searchsorted(e, s, side="right") - 1].append(draw(s))
        rms = np.array([np.sqrt(np.mean([(x**2).sum() for x in b])) if b else np.nan for b in by])
        rms = np.where(np.isnan(rms), np.nanmax(rms), rms)
        alloc = share * rms / (share * rms).sum() * (k - k1)
        n2 = np.floor(alloc).astype(int)
        n2[np.argsort(-(alloc - n2))[: k - k1 - n2.sum()]] += 1
        for b in range(nb):
            by[b] += [draw(rng.integers(e[b], e[b + 1])) for _ in range(n2[b])]
        used = [b for b in range(nb) if by[b]]
        return sum(share[b] * np.mean(by[b], 0) for b in used) / sum(share[b] for b in used)

    def mse(f, *args):
        return float(np.mean([((f(*args) - truth) ** 2).mean() for _ in range(reps)]))

    out = {}
    print(f"\nreplayed on the record ({reps} replays each), MSE per pair:")
    for k in budgets:
        base = mse(permuted, k)
        row = {"permuted": base}
        line = f"K = {k}: permuted {base:.3e}"
        for bins, first in [(8, 0.25), (8, 0.5), (12, 0.25)]:
            v = mse(two_phase, k, bins, first)
            row[f"two_phase_{bins}_bins_{first}"] = v
            line += f" | two-phase {bins} bins, {first:.0%} first: {v:.3e} ({base / v:.2f}x)"
        out[k] = row
        print(line, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("record")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--json")
    ap.add_argument("--simulate", help="comma-separated draw counts K")
    ap.add_argument("--reps", type=int, default=400)
    a = ap.parse_args()
    rec = json.load(open(a.record))
    d = rec["d"]
    sizes, z = weighted_derivatives(rec)
    pairs = z.shape[1]
    est = z.mean(0)  # every size equally often: the stratified estimate
    # per-size means and the between-size part
    mu = np.stack([z[sizes == s].mean(0) for s in range(d + 1)])  # [d+1, pairs]
    per_size = len(sizes) / (d + 1)
    between_obs = ((mu - mu.mean(0)) ** 2).mean(0).sum()  # summed over pairs
    # within-size variance, pooled over bins of adjacent sizes
    edges = np.linspace(0, d + 1, a.bins + 1).round().astype(int)
    rows = []
    within_total = 0.0
    spreads, probs = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (sizes >= lo) & (sizes < hi)
        zs = z[sel]
        mus = mu[sizes[sel]]
        # within-size: deviations from each size's own mean (dof: draws - sizes)
        nsz = hi - lo
        dof = max(sel.sum() - nsz, 1)
        w_var = ((zs - mus) ** 2).sum(0) / dof  # per pair
        # between sizes in the bin, less the noise of the per-size means
        b_var = np.maximum(
            ((mu[lo:hi] - mu[lo:hi].mean(0)) ** 2).mean(0) - w_var / per_size, 0.0
        )
        s2 = (w_var + b_var).sum()  # a bin-stratified design sees both
        p = nsz / (d + 1)
        within_total += p * w_var.sum()
        spreads.append(math.sqrt(s2))
        probs.append(p)
        rows.append(
            {
                "sizes": f"{lo}-{hi - 1}",
                "mean_abs_mu": float(np.abs(mu[lo:hi]).mean()),
                "within_var_sum": float(w_var.sum()),
                "between_in_bin_sum": float(b_var.sum()),
            }
        )
    spreads, probs = np.array(spreads), np.array(probs)
    # the per-size means carry the draws' noise: E[observed] = between + within / per_size
    between = max(between_obs - within_total / per_size, 0.0)
    iid = within_total + between
    neyman = (probs * spreads).sum() ** 2
    prop_bins = (probs * spreads**2).sum()
    mean_sq = float((est**2).mean())
    print(f"{rec['image']} / {rec['question']!r}: d = {d}, {len(sizes)} draws, {pairs} pairs")
    print(f"mean SII^2 (estimate): {mean_sq:.3e}; stderr^2 of the estimate: "
          f"{within_total / len(sizes) / pairs:.3e}")
    print(f"within-size variance (sum over pairs): {within_total:.3e}; between sizes: {between:.3e}")
    print("| base sizes | mean abs E[z] | within-size var (sum over pairs) | between sizes in bin |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['sizes']} | {r['mean_abs_mu']:.3e} | {r['within_var_sum']:.3e} | {r['between_in_bin_sum']:.3e} |")
    print()
    print("MSE per pair x K (K draws; divide by K):")
    out = {"rows": rows, "by_k": {}}
    for k in [16, 32, 64, 128, 151, 256]:
        fpc = max(0.0, 1.0 - (min(k, d + 1) - 1) / d) if k <= d + 1 else 0.0
        permuted = within_total + between * fpc
        line = {
            "iid": iid / pairs,
            "permuted": permuted / pairs,
            "neyman_bins": neyman / pairs,
            "proportional_bins": prop_bins / pairs,
        }
        out["by_k"][k] = line
        print(f"K = {k:4d}: iid {line['iid']:.3e}  permuted {line['permuted']:.3e}  "
              f"bins-proportional {line['proportional_bins']:.3e}  bins-neyman {line['neyman_bins']:.3e}  "
              f"(neyman gain over permuted {permuted / neyman:.2f}x)")
    if a.simulate:
        out["simulated"] = simulate(sizes, z, d, [int(k) for k in a.simulate.split(",")], a.reps)
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
