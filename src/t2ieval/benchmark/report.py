"""The leaderboard's tables and files: CSV, JSON, a text table, a chart and flat metrics.

Nothing written here holds a run id or a time stamp, so a benchmark run under DVC gives the same
bytes for the same inputs (the MLflow run id is printed and logged, not written).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2ieval.benchmark.compare import Comparisons, generator_table
from t2ieval.benchmark.strengths import Strengths
from t2ieval.io import write_json, write_table

log = logging.getLogger(__name__)

FILES = {
    "leaderboard_csv": "leaderboard.csv",
    "leaderboard_json": "leaderboard.json",
    "leaderboard_txt": "leaderboard.txt",
    "chart": "leaderboard.png",
    "pairwise": "pairwise.csv",
    "categories": "categories.csv",
    "scores": "scores.csv",
    "distribution": "distribution.csv",
    "problems": "problems.csv",
    "metrics": "metrics.json",
}


def leaderboard_table(
    c: Comparisons,
    strengths: Strengths,
    scores: pd.DataFrame,
    distribution: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per generator, best first: Bradley-Terry strength and interval, win rate, mean
    scores, counts (images, prompts, missing prompts, comparisons, ties) and the distribution
    metrics (``distribution``: one row per generator, columns named by metric and space).

    A generator without any comparison has no strength (NaN) and comes last.
    """
    table = generator_table(c)
    theta = pd.DataFrame(
        {
            "generator": strengths.names,
            "bt_strength": strengths.theta,
            "bt_ci_low": strengths.ci_low,
            "bt_ci_high": strengths.ci_high,
        }
    )
    table = table.merge(theta, on="generator")
    none = table["comparisons"] == 0
    table.loc[none, ["bt_strength", "bt_ci_low", "bt_ci_high"]] = np.nan
    score_cols = [c for c in ("score", "clip_score", "ce_score", "d_score") if c in scores]
    means = scores.groupby("generator")[score_cols].mean()  # NaN D-scores are left out
    means.columns = [f"mean_{c}" for c in means.columns]
    table = table.merge(means.reset_index(), on="generator", how="left")
    if distribution is not None and not distribution.empty:
        table = table.merge(distribution, on="generator", how="left")
    table = table.sort_values(
        ["bt_strength", "win_rate"], ascending=False, na_position="last", kind="stable"
    ).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    first = ["rank", "generator", "bt_strength", "bt_ci_low", "bt_ci_high", "win_rate"]
    return table[first + [col for col in table.columns if col not in first]]


def category_table(
    c: Comparisons, categories: Mapping[str, str], per_category: Mapping[str, Strengths]
) -> pd.DataFrame:
    """One row per category and generator: strength, interval, win rate, prompts, comparisons,
    ties (a generator without comparisons in a category has no strength there)."""
    rows = []
    prompt_category = np.array([categories.get(p, "") for p in c.prompts])
    for cat, st in per_category.items():
        part = c.subset(prompt_category == cat)
        gt = generator_table(part).set_index("generator")
        for i, g in enumerate(st.names):
            has = gt.at[g, "comparisons"] > 0
            rows.append(
                {
                    "category": cat,
                    "generator": g,
                    "bt_strength": st.theta[i] if has else np.nan,
                    "bt_ci_low": st.ci_low[i] if has else np.nan,
                    "bt_ci_high": st.ci_high[i] if has else np.nan,
                    "win_rate": gt.at[g, "win_rate"],
                    "prompts": int(gt.at[g, "prompts"]),
                    "comparisons": int(gt.at[g, "comparisons"]),
                    "ties": int(gt.at[g, "ties"]),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "category",
            "generator",
            "bt_strength",
            "bt_ci_low",
            "bt_ci_high",
            "win_rate",
            "prompts",
            "comparisons",
            "ties",
        ],
    )


def metric_key(*parts: str) -> str:
    """An MLflow/DVC metric name from parts: characters MLflow refuses become ``_``."""
    return ".".join(re.sub(r"[^A-Za-z0-9_\-/ ]", "_", str(p)) for p in parts)


def flat_metrics(
    leaderboard: pd.DataFrame, categories: pd.DataFrame, counts: Mapping[str, Any]
) -> dict[str, float]:
    """Every number of the leaderboard as ``<column>.<generator>`` (and
    ``category.<category>.<column>.<generator>``), plus the counts: what MLflow and
    ``dvc metrics show`` show."""
    out: dict[str, float] = {}
    for key, value in counts.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[metric_key(key)] = float(value)
    skip = {"generator"}
    for rec in leaderboard.to_dict("records"):
        for col, value in rec.items():
            if (
                col in skip
                or not isinstance(value, (int, float, np.number))
                or isinstance(value, bool)
                or not math.isfinite(float(value))
            ):
                continue
            out[metric_key(col, rec["generator"])] = float(value)
    for rec in categories.to_dict("records"):
        for col in ("bt_strength", "bt_ci_low", "bt_ci_high", "win_rate"):
            value = rec[col]
            if value is not None and math.isfinite(float(value)):
                out[metric_key("category", rec["category"], col, rec["generator"])] = float(value)
    return out


def _fmt(value: Any, digits: int = 3, spec: str = "f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}{spec}}"


def render_text(leaderboard: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    """The leaderboard as the CLI prints it: one line per generator, then what the distribution
    metrics' feature space is and what was skipped or counted."""
    model = summary["model"]
    dist = summary.get("distribution") or {}
    lines = [
        f"leaderboard: {summary['inputs']['generators']} generators, "
        f"{summary['inputs']['prompts']} prompts, {summary['inputs']['images']} images; "
        f"model {model['uri']}",
        f"Bradley-Terry strength (log-odds, centred) with a {summary['method']['level']:.0%} "
        f"bootstrap interval over prompts ({summary['method']['n_bootstrap']} resamples, "
        f"seed {summary['method']['seed']}); ties count half",
    ]
    dist_cols = [
        c
        for c in leaderboard.columns
        if c.startswith(("fid_", "kid_", "is_", "clipscore_")) and not c.endswith("_std")
    ]
    level = f"{summary['method']['level']:.0%} interval"
    header = (
        f"{'rank':>4}  {'generator':<20} {'strength':>8}  {level:>17}  "
        f"{'win rate':>8}  {'score':>7}  {'images':>6}  {'missing':>7}  {'ties':>5}"
    )
    header += "".join(f"  {c:>17}" for c in dist_cols)
    lines += ["", header]
    for rec in leaderboard.to_dict("records"):
        line = (
            f"{rec['rank']:>4}  {rec['generator']:<20} {_fmt(rec['bt_strength']):>8}  "
            f"{'[' + _fmt(rec['bt_ci_low']) + ', ' + _fmt(rec['bt_ci_high']) + ']':>17}  "
            f"{_fmt(rec['win_rate']):>8}  {_fmt(rec.get('mean_score')):>7}  "
            f"{rec['images']:>6}  {rec['missing_prompts']:>7}  {rec['ties']:>5}"
        )
        line += "".join(f"  {_fmt(rec.get(c), 4, 'g'):>17}" for c in dist_cols)
        lines.append(line)
    if dist:
        space = dist["feature_space"]
        lines += [
            "",
            f"feature space of fid_/kid_/is_ ({space['key']}): {space['description']}",
            f"  {space['note']}",
            f"clipscore_t2ieval: {dist['clipscore_note']}",
        ]
        for metric, reason in dist.get("skipped", {}).items():
            lines.append(f"skipped {metric}: {reason}")
    inputs = summary["inputs"]
    if inputs["skipped_rows"]:
        lines.append(f"skipped input rows: {inputs['skipped_rows']} {inputs['skip_reasons']}")
    return "\n".join(lines) + "\n"


def plot_chart(
    path: str | Path, leaderboard: pd.DataFrame, categories: pd.DataFrame, title: str, footnote: str
) -> Path:
    """Strengths with their intervals (left) and strengths per category (right, a heatmap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = leaderboard.iloc[::-1]  # best at the top
    names = board["generator"].tolist()
    has_cats = not categories.empty
    fig, axes = plt.subplots(
        1,
        2 if has_cats else 1,
        figsize=(13 if has_cats else 7, 1.6 + 0.55 * len(names)),
        squeeze=False,
    )
    ax = axes[0][0]
    y = np.arange(len(names))
    theta = board["bt_strength"].to_numpy(dtype=float)
    low = theta - board["bt_ci_low"].to_numpy(dtype=float)
    high = board["bt_ci_high"].to_numpy(dtype=float) - theta
    ax.errorbar(theta, y, xerr=np.vstack([low, high]), fmt="o", color="tab:blue", capsize=4)
    ax.axvline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_yticks(y, names)
    ax.set_xlabel("Bradley-Terry strength (log-odds), 95 % bootstrap interval over prompts")
    ax.set_title("strength")
    if has_cats:
        ax2 = axes[0][1]
        grid = categories.pivot(index="generator", columns="category", values="bt_strength")
        grid = grid.reindex(names[::-1])  # image row 0 is at the top: the best generator
        values = grid.to_numpy(dtype=float)
        bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        image = ax2.imshow(values, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
        ax2.set_xticks(np.arange(grid.shape[1]), grid.columns, rotation=30, ha="right")
        ax2.set_yticks(y, names[::-1])
        for (i, j), v in np.ndenumerate(values):
            ax2.text(j, i, _fmt(v, 2), ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax2, label="strength in the category")
        ax2.set_title("per category")
    fig.suptitle(title)
    fig.text(0.01, 0.005, footnote, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def write_report(
    out_dir: str | Path,
    leaderboard: pd.DataFrame,
    pairwise: pd.DataFrame,
    categories: pd.DataFrame,
    scores: pd.DataFrame,
    distribution: pd.DataFrame,
    problems: pd.DataFrame,
    summary: Mapping[str, Any],
    metrics: Mapping[str, float],
    chart_title: str,
    chart_footnote: str,
) -> dict[str, Path]:
    """Write every file of :data:`FILES` into ``out_dir``; returns their paths by key."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {k: out / v for k, v in FILES.items()}
    write_table(files["leaderboard_csv"], leaderboard)
    write_table(files["pairwise"], pairwise)
    write_table(files["categories"], categories)
    write_table(files["scores"], scores)
    write_table(files["distribution"], distribution)
    write_table(files["problems"], problems)
    write_json(files["leaderboard_json"], summary)
    write_json(files["metrics"], dict(metrics))
    files["leaderboard_txt"].write_text(render_text(leaderboard, summary), encoding="utf-8")
    plot_chart(files["chart"], leaderboard, categories, chart_title, chart_footnote)
    log.info("wrote the leaderboard to %s", out)
    return files
