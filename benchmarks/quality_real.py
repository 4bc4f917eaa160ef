"""Benchmark: the quality model on real generated images (AVT-AI set), prompt-grouped CV.

Run from the project root::

    python benchmarks/quality_real.py [--data ../shared/data/avt-ai-images] [--max-prompts N]
        [--families entropy,nss,handcrafted,all] [--kind pairwise] [--outer-folds 0]
        [--json OUT]

The data folder (``pairs.csv``, ``images/``, ``iqa.csv``; GPL-3.0, never copied into this
repository) defaults to ``../shared/data/avt-ai-images`` relative to the repository root.

Protocol. Features of every image are computed once (all families). The outer loop is
**leave-one-prompt-out** by default (``--outer-folds 0``; ``k > 0`` uses ``GroupKFold(k)``
shuffled with the seed): for each outer fold a model is fitted on the other prompts' pairs, its
``C`` chosen by the model's own prompt-grouped inner CV on those training pairs only, and the
held-out pairs are scored by comparing the two images' scores (tie = 0.5). Accuracy is pooled
over all pairs; its 95 % interval is a bootstrap over prompt groups (``--n-boot`` resamples,
seeded). The published IQA models' scores from ``iqa.csv`` are scored on the same pairs
(lower is better for BRISQUE, NIQE and ILNIQE) as anchors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from t2ieval.data.split import prompt_key
from t2ieval.metrics import pair_credit
from t2ieval.quality.config import DEFAULT_C_GRID, FAMILIES, KINDS, QualityConfig
from t2ieval.quality.families import check_families, feature_names, feature_table
from t2ieval.quality.model import (
    SELECTIONS,
    fit_quality_model,
    pair_matrices,
)
from t2ieval.uncertainty import bootstrap_accuracy_interval

log = logging.getLogger("quality_real")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "avt-ai-images"
LOWER_IS_BETTER = ("BRISQUE", "NIQE", "ILNIQE")
README_ANCHORS = {
    "NIQE": 0.724,
    "MANIQA": 0.713,
    "ILNIQE": 0.657,
    "MUSIQ": 0.619,
    "BRISQUE": 0.601,
    "DBCNN": 0.586,
}
"""Pairwise accuracies the data set's README states for all 268 pairs."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with pairs.csv, images/ and iqa.csv"
    )
    parser.add_argument(
        "--families",
        default="entropy,nss,handcrafted,all",
        help="comma-separated models to evaluate: a family name each, 'all' for "
        "their union, or a '+'-joined union such as nss+handcrafted",
    )
    parser.add_argument("--kind", default="pairwise", choices=KINDS)
    parser.add_argument(
        "--outer-folds",
        type=int,
        default=0,
        help="0: leave-one-prompt-out; k: GroupKFold(k) over prompts",
    )
    parser.add_argument("--inner-folds", type=int, default=QualityConfig.inner_folds)
    parser.add_argument(
        "--selection",
        default=QualityConfig.selection,
        choices=SELECTIONS,
        help="inner-CV score that chooses C",
    )
    parser.add_argument(
        "--inner-repeats",
        type=int,
        default=QualityConfig.inner_repeats,
        help="reshuffled repetitions of the inner CV (scores averaged)",
    )
    parser.add_argument(
        "--max-prompts",
        type=int,
        default=None,
        help="use only the first N prompts (in pairs.csv order), for quick runs",
    )
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1, help="feature extraction threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def _model_sets(spec: str) -> list[tuple[str, tuple[str, ...]]]:
    """``"entropy,nss,all,nss+handcrafted"`` -> [(label, families), ...]."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        fams = FAMILIES if item == "all" else check_families(item.split("+"))
        out.append((item, fams))
    if not out:
        raise SystemExit("--families selects nothing")
    return out


def load_pairs(data: Path, max_prompts: int | None) -> pd.DataFrame:
    path = data / "pairs.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; point --data at the avt-ai-images folder")
    pairs = pd.read_csv(path)
    pairs["group"] = pairs["prompt"].map(prompt_key)
    if max_prompts is not None:
        keep = list(dict.fromkeys(pairs["group"]))[:max_prompts]
        pairs = pairs[pairs["group"].isin(keep)].reset_index(drop=True)
    return pairs


def outer_splits(groups: np.ndarray, outer_folds: int, seed: int):
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    n_groups = len(np.unique(groups))
    if outer_folds == 0:
        return list(LeaveOneGroupOut().split(groups, groups=groups)), "leave-one-prompt-out"
    k = min(outer_folds, n_groups)
    folds = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(folds.split(groups, groups=groups)), f"GroupKFold({k}) over prompts"


def cross_validate(
    features: pd.DataFrame,
    pairs: pd.DataFrame,
    families: tuple[str, ...],
    splits,
    kind: str,
    inner_folds: int,
    seed: int,
    selection: str = "accuracy",
    inner_repeats: int = 1,
) -> dict:
    columns = feature_names(families)
    X1, X2 = pair_matrices(features, pairs, columns)
    pref = pairs["preferred"].to_numpy()
    prompts = pairs["prompt"].to_numpy()
    credit = np.full(len(pairs), np.nan)
    chosen = []
    for train, test in splits:
        model = fit_quality_model(
            X1[train],
            X2[train],
            pref[train],
            prompts[train],
            kind=kind,
            families=families,
            c_grid=DEFAULT_C_GRID,
            inner_folds=inner_folds,
            seed=seed,
            selection=selection,
            inner_repeats=inner_repeats,
        )
        credit[test] = pair_credit(
            model.image_scores(X1[test]), model.image_scores(X2[test]), pref[test]
        )
        chosen.append(model.C)
    return {"credit": credit, "n_features": len(columns), "C": chosen}


def anchor_rows(
    iqa_path: Path, pairs: pd.DataFrame, groups: np.ndarray, n_boot: int, seed: int
) -> list[dict]:
    """Pairwise accuracy (tie = 0.5) and interval of each published IQA model on ``pairs``;
    BRISQUE, NIQE and ILNIQE scores are negated (lower is better)."""
    iqa = pd.read_csv(iqa_path).pivot_table(
        index="image", columns="metric", values="quality_score", aggfunc="first"
    )
    rows = []
    for metric in sorted(iqa.columns, key=lambda m: (-README_ANCHORS.get(m, 0), m)):
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        s1 = sign * pairs["image_1"].map(iqa[metric]).to_numpy(dtype=np.float64)
        s2 = sign * pairs["image_2"].map(iqa[metric]).to_numpy(dtype=np.float64)
        if np.isnan(s1).any() or np.isnan(s2).any():
            log.warning("%s lacks %s for some images; skipped", iqa_path, metric)
            continue
        credit = pair_credit(s1, s2, pairs["preferred"].to_numpy())
        low, high = bootstrap_accuracy_interval(credit, groups, n=n_boot, seed=seed)
        rows.append(
            {
                "model": f"IQA {metric}" + (" (lower=better)" if sign < 0 else ""),
                "metric": metric,
                "n_features": None,
                "accuracy": float(credit.mean()),
                "ci_low": low,
                "ci_high": high,
                "readme": README_ANCHORS.get(metric),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data = args.data.resolve()
    pairs = load_pairs(data, args.max_prompts)
    groups = pairs["group"].to_numpy()
    images = sorted(set(pairs["image_1"]) | set(pairs["image_2"]))
    model_sets = _model_sets(args.families)
    needed = tuple(f for f in FAMILIES if any(f in fams for _, fams in model_sets))

    start = time.perf_counter()
    features = feature_table(images, needed, n_jobs=args.n_jobs, root=data)
    feature_s = time.perf_counter() - start
    splits, protocol = outer_splits(groups, args.outer_folds, args.seed)
    print(f"data: {data}")
    print(
        f"{len(pairs)} pairs, {len(np.unique(groups))} prompts, {len(images)} images; "
        f"features in {feature_s:.1f} s; outer CV: {protocol}; inner CV: "
        f"GroupKFold({args.inner_folds}) x {args.inner_repeats} over the training prompts, "
        f"C by {args.selection} from {', '.join(f'{c:g}' for c in DEFAULT_C_GRID)}; "
        f"kind: {args.kind}"
    )
    print(
        f"95 % intervals: bootstrap over prompt groups, {args.n_boot} resamples, "
        f"seed {args.seed}; ties count 0.5"
    )

    rows = []
    for label, fams in model_sets:
        t0 = time.perf_counter()
        res = cross_validate(
            features,
            pairs,
            fams,
            splits,
            args.kind,
            args.inner_folds,
            args.seed,
            args.selection,
            args.inner_repeats,
        )
        low, high = bootstrap_accuracy_interval(
            res["credit"], groups, n=args.n_boot, seed=args.seed
        )
        c_counts = Counter(f"{c:g}" for c in res["C"])
        rows.append(
            {
                "model": f"quality[{label}]",
                "n_features": res["n_features"],
                "accuracy": float(np.mean(res["credit"])),
                "ci_low": low,
                "ci_high": high,
                "C_chosen": dict(sorted(c_counts.items(), key=lambda kv: float(kv[0]))),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )

    iqa_path = data / "iqa.csv"
    if iqa_path.is_file():
        rows += anchor_rows(iqa_path, pairs, groups, args.n_boot, args.seed)
    else:
        print(f"{iqa_path}: missing; no IQA anchors")

    print()
    print(f"{'model':34s} {'feat':>4s} {'accuracy':>8s} {'95% CI':>15s}  note")
    for r in rows:
        feat = "" if r["n_features"] is None else str(r["n_features"])
        if "C_chosen" in r:
            note = "C chosen per fold: " + ", ".join(f"{c}x{n}" for c, n in r["C_chosen"].items())
        elif r.get("readme") is not None and args.max_prompts is None:
            note = f"README {r['readme']:.3f}"
        else:
            note = ""
        print(
            f"{r['model']:34s} {feat:>4s} {r['accuracy']:8.3f} "
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]  {note}"
        )

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "data": str(data),
            "n_pairs": int(len(pairs)),
            "n_prompts": int(len(np.unique(groups))),
            "n_images": len(images),
            "outer_cv": protocol,
            "inner_folds": args.inner_folds,
            "inner_repeats": args.inner_repeats,
            "selection": args.selection,
            "kind": args.kind,
            "c_grid": list(DEFAULT_C_GRID),
            "n_boot": args.n_boot,
            "seed": args.seed,
            "rows": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
