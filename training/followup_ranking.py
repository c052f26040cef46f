#!/usr/bin/env python3
"""The provider index of `ramtid follow-up` against the true team paces of random worlds.

Per seed: `ramtid simulate --world random`, `ramtid train` on its log, orders for every
logged recipient, `ramtid follow-up` on the same log; then, over the day teams (the night
team is confounded with the night slot it alone serves), Spearman's rank correlation of the
index with the true time per efficient minute (pace x weekend factor on 2 days of 7, plus
slack minutes per visit over the unit's expected minutes per visit) and with the pace
alone, and how many true values fall inside the index's P10-P90 interval.

    python3 training/followup_ranking.py --ramtid target/release/ramtid --seeds 1 2 4 5 6
"""
import argparse, csv, json, os, subprocess, tempfile


def rank(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0] * len(v)
    for k, i in enumerate(order):
        r[i] = k
    return r


def spearman(a, b):
    ra, rb, n = rank(a), rank(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ramtid", default="target/release/ramtid")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 5, 6])
    p.add_argument("--recipients", type=int, default=1500)
    p.add_argument("--weeks", type=int, default=8)
    a = p.parse_args()
    env = dict(os.environ, RAMTID_LOG="error")
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            w, m, out = (os.path.join(tmp, x) for x in ("world", "models", "out"))
            run = lambda *args: subprocess.run([a.ramtid, *args], check=True, env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run("simulate", "--world", "random", "--seed", str(seed), "--recipients",
                str(a.recipients), "--weeks", str(a.weeks), "--holdout", "10", "--out", w)
            run("train", "--catalog", f"{w}/catalog.toml", "--visits", f"{w}/visits.csv",
                "--out", m, "--name", "f", "--folds", "3", "--lambdas", "10,100")
            ids = sorted({r["recipient_id"] for r in csv.DictReader(open(f"{w}/visits.csv"))})
            orders = os.path.join(tmp, "orders.csv")
            with open(orders, "w") as f:
                f.write("recipient_id,weekly_min\n")
                for i, rid in enumerate(ids):
                    f.write(f"{rid},{60 + (i * 37) % 400}\n")
            run("follow-up", "--model", f"{m}/f", "--orders", orders, "--visits",
                f"{w}/visits.csv", "--out", out)
            sim = json.load(open(f"{w}/simulation.json"))
            teams = {t["unit_id"]: t for t in sim["teams"]}
            rows = [r for r in csv.DictReader(open(f"{out}/providers.csv"))
                    if r["unit_id"] != sim["night_team"]]
            idx, pace, truth, inside = [], [], [], 0
            for r in rows:
                t = teams[r["unit_id"]]
                per_visit = float(r["expected_min"]) / int(r["visits"])
                tv = t["pace"] * (1 + 2 / 7 * (t["weekend"] - 1)) + t["slack_min"] / per_visit
                idx.append(float(r["index"]))
                pace.append(t["pace"])
                truth.append(tv)
                inside += float(r["index_p10"]) <= tv <= float(r["index_p90"])
            print(f"seed {seed}: {len(rows)} day teams, Spearman {spearman(idx, truth):.3f} "
                  f"(pace alone {spearman(idx, pace):.3f}), true value inside P10-P90: "
                  f"{inside} of {len(rows)}")


if __name__ == "__main__":
    main()
