#!/usr/bin/env python3
"""Compare multishap explanations: the first result.json is the reference, each further one is
compared with it (prediction, full / empty scores, SII grid: max |difference| and its ratio to
max |reference SII|). With --jsonl, compare two results.jsonl files record by record (by id).

    python3 scripts/cuda/compare_results.py cpu/result.json cuda-f32/result.json cuda-bf16/result.json
    python3 scripts/cuda/compare_results.py --jsonl run-1/results.jsonl run-8/results.jsonl
Standard library only.
"""
import json
import sys


def flat(rows):
    return [v for row in rows for v in row]


def compare(ref, other):
    a, b = flat(ref["sii"]), flat(other["sii"])
    if len(a) != len(b):
        return dict(error=f"SII grids differ in size: {len(a)} vs {len(b)}")
    diff = max(abs(x - y) for x, y in zip(a, b))
    scale = max(abs(x) for x in a) or 1.0
    pa = (ref.get("prediction") or {}).get("label")
    pb = (other.get("prediction") or {}).get("label")
    return dict(
        same_prediction=pa == pb,
        full_score_diff=abs(ref["full_score"] - other["full_score"]),
        empty_score_diff=abs(ref["empty_score"] - other["empty_score"]),
        sii_max_abs_diff=diff,
        sii_max_abs_reference=scale,
        sii_relative=diff / scale,
        seconds=(ref.get("seconds"), other.get("seconds")),
    )


def main(argv):
    if argv and argv[0] == "--jsonl":
        recs = []
        for path in argv[1:3]:
            with open(path) as f:
                recs.append({r["id"]: r for r in map(json.loads, filter(str.strip, f)) if "sii" in r})
        ids = sorted(set(recs[0]) & set(recs[1]))
        worst = max((compare(recs[0][i], recs[1][i]) for i in ids), key=lambda c: c.get("sii_relative", 1e9))
        print(json.dumps(dict(records=len(ids), worst=worst)))
        return
    with open(argv[0]) as f:
        ref = json.load(f)
    for path in argv[1:]:
        with open(path) as f:
            print(json.dumps(dict(reference=argv[0], other=path, **compare(ref, json.load(f)))))


if __name__ == "__main__":
    main(sys.argv[1:])
