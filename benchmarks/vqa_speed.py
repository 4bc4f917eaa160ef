"""Speed of the VQA branch per scored pair, and the accuracy cost of int8 and bf16 (issue 16).

    python benchmarks/vqa_speed.py --size real --threads 2 --repeats 3
    python benchmarks/vqa_speed.py --size tiny --kinds vilt --trained models/vqa

One unit of work is a pair: two images, 12 questions each (the served model's default cap). For
each VQA kind, on random-weight checkpoints with the real configurations and file layouts
(``tests/checkpoints.py``; ``--size real``: ViLT-B/32 and BLIP-VQA base at 384 px), it times:

* ``plain``: one forward pass per (image, question), the image encoded every time: what a
  straightforward implementation runs (the floor of issue 16);
* ``batched, per-question image k/v`` (BLIP only): one batch, the vision encoder once per image,
  but the text encoder's cross-attention projecting the image tokens again for every question
  (this project before the change);
* ``batched``: the default path (:meth:`VqaModel.yes_probability`: per-image work once);
* ``batched int8``, ``batched bf16``: the same after ``vqa.quantize: int8`` / ``bf16`` (bf16 is
  fast only on a CPU with native bf16, AVX512-BF16 or AMX: the table's title says which).

and prints a table: ms per pair (median over ``--repeats``), speed-up over ``plain``, and for the
int8 and bf16 rows their agreement with fp32 (mean |dP(yes)|, Spearman rho of P(yes), verdict
agreement over ``--agree-pairs`` image pairs). Random weights answer almost the same for every
image, so ``--trained`` (a folder written by the ``train_vqa`` stage, e.g. ``models/vqa``) or
``--train-tiny`` (trains a small embedded ViLT on synthetic data first, about a minute) adds the
agreement of a trained model on its own synthetic pairs, which is the figure that matters.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from t2ieval.vqa.model import BlipVqa, VqaModel, cpu_has_native_bf16, load_vqa_model

log = logging.getLogger("vqa_speed")
MODES = ("int8", "bf16")  # the vqa.quantize settings compared with fp32
ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "is there a red circle?",
    "are there two blue squares?",
    "is there a green star?",
    "is the circle to the left of the square?",
    "is the star above the circle?",
    "is there a yellow triangle?",
    "are there three hearts?",
    "is the square below the star?",
    "is there a purple cross?",
    "is the photo a sketch?",
    "is there a cat next to the dog?",
    "are there any orange circles?",
]


def _images(n: int, size: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)
    ]


def _pair_rows(n_questions: int) -> tuple[list[int], list[str]]:
    qs = QUESTIONS[:n_questions]
    return [i for i in range(2) for _ in qs], qs * 2


def plain(
    vqa: VqaModel, images: list[Image.Image], n_questions: int, rows: int | None = None
) -> np.ndarray:
    """One forward pass per (image, question), the image encoded each time; only the first
    ``rows`` rows when given (each row costs the same: the caller scales the time)."""
    idx, qs = _pair_rows(n_questions)
    pairs = list(zip(idx, qs))[:rows]
    return np.array(
        [vqa.yes_probability(vqa.encode_images([images[i]]), [0], [q])[0] for i, q in pairs]
    )


def batched(vqa: VqaModel, images: list[Image.Image], n_questions: int) -> np.ndarray:
    """Every question of both images in one call (the library's path)."""
    idx, qs = _pair_rows(n_questions)
    return vqa.yes_probability(vqa.encode_images(images), idx, qs)


def per_question_kv(vqa: VqaModel, images: list[Image.Image], n_questions: int) -> np.ndarray:
    """BLIP batched, but image keys and values projected once per question (the old path)."""
    assert isinstance(vqa, BlipVqa)
    vqa.share_image_kv = False
    try:
        return batched(vqa, images, n_questions)
    finally:
        vqa.share_image_kv = True


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Median wall time in ms over ``repeats`` runs after one warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def agreement(p32: np.ndarray, p8: np.ndarray, d32: np.ndarray, d8: np.ndarray) -> str:
    """mean |dP|, Spearman rho of P(yes), and verdict agreement over pairs (d: [pairs, 2])."""
    rho = spearmanr(p32, p8).statistic if np.ptp(p32) > 0 else float("nan")
    v32, v8 = np.sign(d32[:, 0] - d32[:, 1]), np.sign(d8[:, 0] - d8[:, 1])
    return (
        f"|dP| {np.abs(p32 - p8).mean():.2e}, rho {rho:.3f}, "
        f"verdicts {np.mean(v32 == v8):.0%} of {len(v32)}"
    )


def _d_per_pair(
    vqa: VqaModel, images: list[Image.Image], n_questions: int
) -> tuple[np.ndarray, np.ndarray]:
    ps = [batched(vqa, images[k : k + 2], n_questions) for k in range(0, len(images), 2)]
    d = np.array([[p[:n_questions].mean(), p[n_questions:].mean()] for p in ps])
    return np.concatenate(ps), d


def bench_kind(kind: str, folder: Path, args: argparse.Namespace, image_size: int) -> list[tuple]:
    """Rows ``(kind, path, ms per pair, speed-up, int8/bf16 agreement)`` for one checkpoint."""
    vqa = load_vqa_model(folder, device="cpu")
    images = _images(2, image_size, seed=1)
    nq = args.questions
    rows = []
    n_rows = 2 * nq
    sample = min(args.plain_rows or n_rows, n_rows)
    ms_plain, p_plain = timed(lambda: plain(vqa, images, nq, sample), args.repeats)
    ms_plain *= n_rows / sample
    log.info("%s plain: %.0f ms per pair", kind, ms_plain)
    rows.append(
        (
            kind,
            "plain: one pass per (image, question)",
            ms_plain,
            1.0,
            "" if sample == n_rows else f"timed on {sample} of {n_rows} rows, scaled",
        )
    )
    p_before = None
    if isinstance(vqa, BlipVqa):
        ms, p_before = timed(lambda: per_question_kv(vqa, images, nq), args.repeats)
        rows.append(
            (
                kind,
                "batched, per-question image k/v (before)",
                ms,
                ms_plain / ms,
                f"max |dP| vs plain {np.abs(p_before[:sample] - p_plain).max():.1e}",
            )
        )
    ms, p32 = timed(lambda: batched(vqa, images, nq), args.repeats)
    note = f"max |dP| vs plain {np.abs(p32[:sample] - p_plain).max():.1e}"
    if p_before is not None:
        note += f", vs before {np.abs(p32 - p_before).max():.1e}"
    rows.append((kind, "batched (default)", ms, ms_plain / ms, note))
    log.info("%s batched: %.0f ms per pair", kind, ms)
    more = _images(2 * args.agree_pairs, image_size, seed=2)
    a32, d32 = _d_per_pair(vqa, more, nq)
    for mode in MODES:
        reduced = copy.deepcopy(vqa).quantize(mode)
        ms_r, _ = timed(lambda: batched(reduced, images, nq), args.repeats)
        log.info("%s batched %s: %.0f ms per pair; agreement next", kind, mode, ms_r)
        a_r, d_r = _d_per_pair(reduced, more, nq)
        rows.append((kind, f"batched {mode}", ms_r, ms_plain / ms_r, agreement(a32, a_r, d32, d_r)))
    return rows


def trained_agreement(folder: Path, n_pairs: int) -> list[str]:
    """int8 and bf16 vs fp32 on a trained model's own synthetic pairs, through
    :class:`VqaScorer`: one line per mode."""
    import pandas as pd

    from t2ieval.data.synthetic import generate
    from t2ieval.images import load_image
    from t2ieval.vqa.score import VqaScorer

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), n_pairs, size=96, seed=11, image_root=Path(tmp))
        pairs = pd.read_csv(Path(tmp) / "pairs.csv")
        prompts = [p for p in pairs["prompt"] for _ in range(2)]
        images = [
            load_image(Path(tmp) / im)
            for a, b in zip(pairs["image_1"], pairs["image_2"])
            for im in (a, b)
        ]
        results = {}
        for mode in ("none", *MODES):
            scorer = VqaScorer.load(folder, device="cpu", quantize=mode)
            t0 = time.perf_counter()
            d, answers = scorer.score_images(prompts, images)
            seconds = time.perf_counter() - t0
            results[mode] = (d.reshape(-1, 2), answers["p_yes"].to_numpy(), seconds)
    truth = (pairs["preferred"].to_numpy() == 1) if "preferred" in pairs else None
    d32, a32, t32 = results["none"]
    lines = []
    for mode in MODES:
        d, a, t = results[mode]
        text = f"{mode} vs fp32: " + agreement(a32, a, d32, d)
        if truth is not None:
            acc = [np.mean((x[:, 0] > x[:, 1]) == truth) for x in (d32, d)]
            text += f"; pairwise accuracy fp32 {acc[0]:.3f}, {mode} {acc[1]:.3f}"
        lines.append(f"{text}; scoring {t32:.1f} s fp32, {t:.1f} s {mode} ({len(pairs)} pairs)")
    return lines


def train_tiny(out: Path, n_pairs: int = 60) -> Path:
    """A small embedded ViLT trained on synthetic pairs (like the tests' fixture), in ``out``."""
    import pandas as pd

    from t2ieval.data.split import assign_splits, image_table
    from t2ieval.data.synthetic import generate
    from t2ieval.images import load_image
    from t2ieval.pipeline.vqa import read_qa, train_stage
    from t2ieval.vqa.settings import TrainSettings

    data = out / "data"
    generate(data, n_pairs, size=96, seed=3, image_root=data)
    pairs = pd.read_csv(data / "pairs.csv")
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    split = assign_splits(pairs, 0.8, 0.1, 0.1, 0)
    train_stage(
        image_table(split),
        read_qa(data / "qa.csv"),
        enabled=True,
        model="t2i-tiny-vilt",
        kind="auto",
        device=torch.device("cpu"),
        settings=TrainSettings(epochs=2, pretrain_epochs=4),
        seed=0,
        train_embedded=True,
        max_questions=12,
        out_dir=out / "vqa",
        load=load_image,
    )
    return out / "vqa"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="real", choices=["real", "tiny"])
    ap.add_argument("--kinds", nargs="+", default=["vilt", "blip"], choices=["vilt", "blip"])
    ap.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="folder with <kind>_<size>/ checkpoints to reuse (written if missing)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--questions", type=int, default=12, choices=range(1, len(QUESTIONS) + 1))
    ap.add_argument("--agree-pairs", type=int, default=4)
    ap.add_argument(
        "--plain-rows",
        type=int,
        default=0,
        help="time the plain path on this many (image, question) rows and scale to "
        "the pair's (0: all; every row costs the same)",
    )
    ap.add_argument(
        "--trained",
        type=Path,
        default=None,
        help="a train_vqa output folder (models/vqa) for the trained int8/bf16 agreement",
    )
    ap.add_argument(
        "--train-tiny",
        action="store_true",
        help="train a small embedded ViLT first for the trained int8/bf16 agreement",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # progress of this script; the library stays at WARNING
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoints import write_blip, write_vilt

    with tempfile.TemporaryDirectory() as tmp:
        root = args.checkpoints or Path(tmp)
        rows = []
        for kind in args.kinds:
            folder = root / f"{kind}_{args.size}"
            if not (folder / "config.json").is_file():
                (write_vilt if kind == "vilt" else write_blip)(folder, size=args.size)
            size = 384 if args.size == "real" else 64
            rows += bench_kind(kind, folder, args, size)
        trained = args.trained
        if trained is None and args.train_tiny:
            trained = train_tiny(Path(tmp) / "trained")
        trained_line = trained_agreement(trained, 40) if trained is not None else None

    print(
        f"\nVQA per pair (2 images x {args.questions} questions), {args.size}-size random "
        f"weights, {args.threads} threads, CPU fp32 unless int8/bf16 (native bf16 on this CPU: "
        f"{'yes' if cpu_has_native_bf16() else 'no, emulated'}), median of {args.repeats}"
    )
    print(f"{'kind':5} | {'path':42} | {'ms/pair':>9} | {'speed-up':>8} | notes / agreement")
    print("-" * 110)
    for kind, path, ms, speedup, note in rows:
        print(f"{kind:5} | {path:42} | {ms:9.0f} | {speedup:7.2f}x | {note}")
    if trained_line is not None:
        print(f"\ntrained embedded ViLT ({trained}):")
        for line in trained_line:
            print(f"  {line}")


if __name__ == "__main__":
    main()
