"""Prediction sets, out-of-distribution flags and their cost on real tables (the bars of the trust issue).

    pip install ".[bench]"                             # the tables of bench_accuracy.py
    python benchmarks/bench_conformal.py               # coverage, held-out classes and timing
    python benchmarks/bench_conformal.py --part coverage --sets wdbc,biopsy
    python benchmarks/bench_conformal.py --quick       # 3 folds, fewer held-out classes: a smoke test

Four parts:

coverage   every set of bench_accuracy.py with more than 150 samples, 5-fold cross-validation (grouped where
           samples share a patient; seed 0): each fold trains what ``mlpcli train`` ships on its training
           part and predicts its test part with ``--coverage 0.9``; pooled over the folds: the empirical
           coverage of APS and LAC sets (bar: within [0.88, 0.95]), their mean size, and with ``--mondrian``
           the lowest per-class coverage among classes of at least 20 samples (bar: >= 0.85).
heldout    multiclass sets, one class at a time held out of training entirely: the model trains on a grouped
           80 % of the other classes' rows and predicts the other 20 % (in-distribution) and every row of the
           held-out class; bar: >= 70 % of the held-out class flagged ``ood`` (p < 0.01) or given an empty or
           multi-class APS set, <= 5 % of the in-distribution rows flagged ``ood``. Beside the bar: the shares
           flagged at p < 0.05, and the number of held-out calibration rows (a table of 120 training rows can
           flag at 0.01 only a sample further out than every one of them).
site       a new site, simulated: a model trained at home (250 patients, 2 samples each, 40 features, 3 classes)
           and a site whose samples are scaled and shifted, of another class mix, and (``noisier``) noisier; it is
           recalibrated on 150 labelled patients of the site (``mlpcli recalibrate``) with ``--conformal training``
           and ``--conformal cohort``, and 1,500 other patients of the site are scored: the coverage of the sets at
           0.9 and their mean size, per seed and over --seeds seeds; and the share of the site's ordinary samples
           and of 300 of a kind no training class is (seen only there) flagged out-of-distribution at 0.01 and
           0.05, with the training calibration and the cohort's. No bar: the issue asks for coverage per held-out
           batch (``cv --leave-batch-out``); this measures what a labelled cohort of the new site restores.
timing     ``mlpcli predict`` of a 20,000-row table (the sample data's generator, 2,000 genes) with a
           5-member model, plain and with ``--coverage 0.9 --mondrian --ood --min-confidence 0.5
           --abstain-on-empty-set --conformal-score lac``; the fastest of --repeat runs each (bar: all on <= 1.5 x
           plain).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# one BLAS thread, set before NumPy loads BLAS (setting it later has no effect): the trained networks, and
# with them the prediction sets, then do not depend on the machine's core count or load
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_accuracy as ba  # noqa: E402  (the tables and their folds)

LEVEL = 0.9
COVERAGE_BAR = (0.88, 0.95)
MONDRIAN_BAR, MONDRIAN_MIN_CLASS = 0.85, 20
HELDOUT_BAR, IN_DISTRIBUTION_BAR = 0.70, 0.05
TIME_BAR = 1.5
MIN_SAMPLES = 150


def _dataset(X: np.ndarray, y: np.ndarray, groups, names: list[str], classes: list[str] | None = None):
    from mlpcli import data

    frame = pd.DataFrame(X, columns=names)
    frame[ba.LABEL_COL] = y
    if groups is not None:
        frame[ba.GROUP_COL] = groups
    roles, _ = data.resolve_roles(frame.columns, no_group=groups is None)
    return data.Dataset.from_frame(frame, roles, classes=classes)


def _train(bench: ba.BenchSet, rows: np.ndarray, seed: int):
    from mlpcli import pipeline

    options = ba.train_options(ba.Variant("default", {}), seed, bench.groups is not None,
                               bool(bench.X.isna().to_numpy().any()))
    groups = None if bench.groups is None else bench.groups[rows]
    ds = _dataset(bench.X.to_numpy()[rows], bench.y[rows], groups, list(bench.X.columns))
    return pipeline.train_dataset(ds, options).model


def _sets(model, X: np.ndarray, score: str, mondrian: bool, logits: list) -> np.ndarray:
    from mlpcli.conformal import SetPredictor

    sp = SetPredictor(model.conformal, len(model.classes), len(model.members), model.output_activation(),
                      model.temperature, LEVEL, score, mondrian)
    return np.concatenate([sp.sets(block) for block in logits])


def coverage_part(sets: list[str], n_folds: int) -> list[dict]:
    rows = []
    for name in sets:
        bench = ba.SETS[name]()
        if len(bench.y) <= MIN_SAMPLES:
            continue
        started = time.perf_counter()
        covered = {key: [] for key in ("aps", "lac", "apsM", "lacM")}
        sizes = {key: [] for key in covered}
        truth = []
        for train, test in ba.make_folds(bench.y, bench.groups, n_folds, 0):
            model = _train(bench, train, 0)
            index = {str(c): k for k, c in enumerate(model.classes)}
            y = np.array([index[str(v)] for v in bench.y[test]])
            logits: list = []
            model.predict_output(bench.X.to_numpy()[test], member_logits=logits)
            for key in covered:
                members = _sets(model, bench.X.to_numpy()[test], key[:3], key.endswith("M"), logits)
                covered[key].append(members[np.arange(len(y)), y])
                sizes[key].append(members.sum(axis=1))
            truth.append(bench.y[test].astype(str))
        labels = np.concatenate(truth)
        big = [c for c in sorted(set(labels.tolist())) if (labels == c).sum() >= MONDRIAN_MIN_CLASS]
        row = {"set": name, "n": len(labels), "seconds": time.perf_counter() - started}
        for key in covered:
            cov, size = np.concatenate(covered[key]), np.concatenate(sizes[key])
            row[f"{key}_coverage"] = float(cov.mean())
            row[f"{key}_size"] = float(size.mean())
            row[f"{key}_empty"] = float((size == 0).mean())
            row[f"{key}_min_class"] = min(float(cov[labels == c].mean()) for c in big) if big else None
        rows.append(row)
        print(_coverage_line(row), flush=True)
    return rows


def _coverage_line(r: dict) -> str:
    ok = COVERAGE_BAR[0] <= r["aps_coverage"] <= COVERAGE_BAR[1] and COVERAGE_BAR[0] <= r["lac_coverage"] <= COVERAGE_BAR[1]
    mond = all(r[f"{k}_min_class"] is None or r[f"{k}_min_class"] >= MONDRIAN_BAR for k in ("apsM", "lacM"))
    return (f"| {r['set']} | {r['n']} | {r['aps_coverage']:.3f} | {r['aps_size']:.2f} | {r['aps_empty']:.1%} | "
            f"{r['lac_coverage']:.3f} | {r['lac_size']:.2f} | {r['lac_empty']:.1%} | "
            f"{r['apsM_coverage']:.3f} / {_f(r['apsM_min_class'])} | {r['lacM_coverage']:.3f} / {_f(r['lacM_min_class'])} | "
            f"{'yes' if ok else 'NO'} | {'yes' if mond else 'NO'} |")


def _f(v) -> str:
    return "—" if v is None else f"{v:.3f}"


COVERAGE_HEADER = ("| set | n | APS coverage | APS size | APS empty | LAC coverage | LAC size | LAC empty | "
                   "APS Mondrian overall / lowest class | LAC Mondrian overall / lowest class | coverage bar | "
                   "Mondrian bar |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|")


def heldout_part(sets: list[str], quick: bool) -> list[dict]:
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    rows = []
    for name in sets:
        bench = ba.SETS[name]()
        if len(bench.classes) < 3 or len(bench.y) <= MIN_SAMPLES:
            continue
        for held in bench.classes[:2] if quick else bench.classes:
            started = time.perf_counter()
            inside = np.flatnonzero(bench.y != held)
            dummy = np.zeros((len(inside), 1))
            if bench.groups is not None:
                tr, te = next(GroupShuffleSplit(1, test_size=0.2, random_state=0).split(dummy, groups=bench.groups[inside]))
            else:
                tr, te = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=0).split(dummy, bench.y[inside]))
            model = _train(bench, inside[tr], 0)
            X = bench.X.to_numpy()
            out = {}
            for what, rows_ in (("in", inside[te]), ("held", np.flatnonzero(bench.y == held))):
                logits: list = []
                model.predict_output(X[rows_], member_logits=logits)
                members = _sets(model, X[rows_], "aps", False, logits)
                p = model.ood.score_and_p(model.preprocessor.transform(X[rows_]))[1]  # as predict computes them
                flagged = p < 0.01
                size = members.sum(axis=1)
                out[what] = {"n": len(rows_), "ood": float(flagged.mean()), "ood05": float((p < 0.05).mean()),
                             "either": float((flagged | (size != 1)).mean()),
                             "multi_or_empty": float((size != 1).mean())}
            row = {"set": name, "held_out": held, **{f"{w}_{k}": v for w, d in out.items() for k, v in d.items()},
                   "calibration": len(model.ood.calibration), "seconds": time.perf_counter() - started}
            rows.append(row)
            ok = row["held_either"] >= HELDOUT_BAR and row["in_ood"] <= IN_DISTRIBUTION_BAR
            print(f"| {name} | {held} | {row['held_n']} | {row['held_ood']:.1%} | {row['held_multi_or_empty']:.1%} | "
                  f"{row['held_either']:.1%} | {row['in_n']} | {row['in_ood']:.1%} | {row['in_multi_or_empty']:.1%} | "
                  f"{'yes' if ok else 'NO'} | {row['held_ood05']:.1%} / {row['in_ood05']:.1%} | {row['calibration']} |",
                  flush=True)
    return rows


HELDOUT_HEADER = ("| set | held-out class | n | flagged ood | empty or multi-class set | either (bar >= 70 %) | "
                  "in-distribution n | in-distribution flagged ood (bar <= 5 %) | in-distribution empty or multi | "
                  "bars | flagged at p < 0.05: held-out / in-distribution | calibration rows (smallest p: 1 / (rows + 1)) |"
                  "\n|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|---:|---:|")


SITE_FEATURES, SITE_CLASSES = 40, 3
OOD_LEVELS = (0.01, 0.05)


def site_part(seeds: int) -> list[dict]:
    from mlpcli import pipeline
    from mlpcli.config import TrainOptions
    from mlpcli.predict.recalibrate import recalibrate
    from mlpcli.predict.trust import held_out_trust

    sys.path.insert(0, str(REPO / "tests"))
    from tables import site_population  # the generator the site's test uses

    print(f"{'site':8} {'seed':>4} {'training sets':>14} {'size':>5} {'cohort sets':>12} {'size':>5} | OOD flagged at "
          f"{OOD_LEVELS[0]} / {OOD_LEVELS[1]}: {'training, ordinary':>18} {'new kind':>11} {'cohort, ordinary':>17} "
          f"{'new kind':>11}")
    rows = []
    for setting, noise in (("noisier", 1.5), ("same", 1.0)):
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            means = rng.normal(0, 0.45, (SITE_CLASSES, SITE_FEATURES))
            shift = np.where(rng.random(SITE_FEATURES) < 0.3, rng.normal(0, 0.8, SITE_FEATURES), 0.0)
            at_site = dict(shift=shift, scale=1.3, noise=noise)
            home = site_population(rng, means, 250, 2, [1 / 3] * 3, 0)
            cohort = site_population(rng, means, 150, 2, [0.6, 0.3, 0.1], 10_000, **at_site)
            later = site_population(rng, means, 1500, 1, [0.6, 0.3, 0.1], 20_000, **at_site)
            # a kind of sample no training class is, seen only at the site: ten genes of a fourth mean up by 2.5
            # (its own generator, so the draws above are those of the coverage rounds before it)
            other = np.random.default_rng([seed, 1])
            new_kind = other.normal(0, 0.45, (1, SITE_FEATURES))
            new_kind[0, :10] += 2.5
            novel = site_population(other, new_kind, 300, 1, [1.0], 30_000, **at_site)
            model = pipeline.train(home, TrainOptions(hidden=[32], folds=3, seed=seed)).model
            features = [f"g{j}" for j in range(SITE_FEATURES)]
            X = later[features].to_numpy()
            y = later["label"].map({c: i for i, c in enumerate(model.classes)}).to_numpy()
            row = {"site": setting, "seed": seed}
            for sets in ("training", "cohort"):
                recalibrated = recalibrate(model, cohort, conformal=sets).model
                trust = held_out_trust(recalibrated, X, y, level=LEVEL)
                row[sets], row[f"{sets}_size"] = trust["coverage"], trust["mean_set_size"]
                for name, rows_of in (("ordinary", X), ("new", novel[features].to_numpy())):
                    p = recalibrated.ood.score_and_p(recalibrated.preprocessor.transform(rows_of))[1]
                    for alpha in OOD_LEVELS:
                        row[f"{sets}_ood_{name}_{alpha}"] = float(np.mean(p < alpha))

            def rates(sets: str, name: str) -> str:
                return " / ".join(f"{row[f'{sets}_ood_{name}_{a}']:.3f}" for a in OOD_LEVELS)

            print(f"{setting:8} {seed:>4} {row['training']:>14.3f} {row['training_size']:>5.2f} {row['cohort']:>12.3f} "
                  f"{row['cohort_size']:>5.2f} | {'':20}{rates('training', 'ordinary'):>18} {rates('training', 'new'):>11} "
                  f"{rates('cohort', 'ordinary'):>17} {rates('cohort', 'new'):>11}", flush=True)
            rows.append(row)
    frame = pd.DataFrame(rows)
    for setting, part in frame.groupby("site", sort=False):
        print(f"{setting}: training sets {part['training'].mean():.3f} ± {part['training'].std():.3f} "
              f"({part['training'].min():.3f}-{part['training'].max():.3f}), size {part['training_size'].mean():.2f}; "
              f"cohort sets {part['cohort'].mean():.3f} ± {part['cohort'].std():.3f} ({part['cohort'].min():.3f}-"
              f"{part['cohort'].max():.3f}), size {part['cohort_size'].mean():.2f}")
        for sets in ("training", "cohort"):
            shares = []
            for name in ("ordinary", "new"):
                means = [part[f"{sets}_ood_{name}_{a}"].mean() for a in OOD_LEVELS]
                shares.append(f"{name} " + " / ".join(f"{m:.3f}" for m in means))
            print(f"  OOD flagged at {OOD_LEVELS[0]} / {OOD_LEVELS[1]}, {sets} calibration: {'; '.join(shares)} (means)")
    return rows


def timing_part(rows: int, repeat: int) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    work = tempfile.mkdtemp(prefix="bench_conformal_")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    src = pd.read_csv(ba.SAMPLE_DATA)
    big = pd.concat([src] * (rows // len(src) + 1), ignore_index=True).iloc[:rows]
    big["sample_id"] = [f"S{i:07d}" for i in range(len(big))]
    table = os.path.join(work, "big.csv")
    big.to_csv(table, index=False)
    model = os.path.join(work, "m.mlp")
    subprocess.run([sys.executable, "-m", "mlpcli", "train", str(ba.SAMPLE_DATA), "-o", model, "-q"], env=env,
                   check=True, capture_output=True)
    commands = {
        "plain": [],
        "all on": ["--coverage", "0.9", "--mondrian", "--ood", "--min-confidence", "0.5", "--abstain-on-empty-set",
                   "--conformal-score", "lac"],
    }
    best = {k: float("inf") for k in commands}
    for _ in range(repeat):
        for name, extra in commands.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mlpcli", "predict", model, table, "-o",
                            os.path.join(work, "p.csv"), "-q", *extra], env=env, check=True, capture_output=True)
            best[name] = min(best[name], time.perf_counter() - started)
    ratio = best["all on"] / best["plain"]
    print(f"predict {rows:,} rows x 2,000 genes, 5-member model: plain {best['plain']:.2f} s, all on "
          f"{best['all on']:.2f} s, ratio {ratio:.2f} (bar <= {TIME_BAR}: {'yes' if ratio <= TIME_BAR else 'NO'})")
    return {"rows": rows, **best, "ratio": ratio}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", "coverage", "heldout", "site", "timing"], default="all")
    ap.add_argument("--seeds", type=int, default=10, help="the site part's seeds")
    ap.add_argument("--sets", default=None, help="comma-separated set names (default: every set of > 150 samples)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    names = args.sets.split(",") if args.sets else [s for s in ba.SETS if s != "nci60"]
    if args.part in ("all", "coverage"):
        print(f"Coverage at {LEVEL} on held-out folds ({3 if args.quick else 5}-fold CV, seed 0):\n" + COVERAGE_HEADER)
        coverage_part(names, 3 if args.quick else 5)
    if args.part in ("all", "heldout"):
        print("\nOne class held out of training:\n" + HELDOUT_HEADER)
        heldout_part(names, args.quick)
    if args.part in ("all", "site"):
        print(f"\nA new site: coverage at {LEVEL} of 1,500 of its patients, with the training sets and with sets "
              "calibrated on 150 labelled patients of it (recalibrate):")
        site_part(2 if args.quick else args.seeds)
    if args.part in ("all", "timing"):
        print()
        timing_part(args.rows, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
