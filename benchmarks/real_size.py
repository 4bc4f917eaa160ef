"""Benchmark: real-size models (``ViT-B-32`` + ViLT-B/32 or BLIP-VQA base), served and batched,
against THE FLOOR, the plain forward passes the same work needs.

Run from the project root::

    python benchmarks/real_size.py [--checkpoints DIR] [--size real|tiny] [--kinds vilt,blip]
        [--requests 10] [--api-pairs 4] [--spark-pairs 4] [--floor-pairs 1] [--no-spark]
        [--quantize none|bf16|int8]

``--checkpoints`` is a folder written by ``python tests/checkpoints.py DIR --size real`` (random
weights in the real layouts); without it the checkpoints are written into the work folder first.
For each VQA kind the script builds the composite model (CLIP ``ViT-B-32`` from the local
open_clip file with identity-initialised heads, a quality model fitted on a few generated pairs,
the VQA checkpoint with a cap of 12 questions and ``--quantize`` as its ``vqa.quantize``, the
published fusion weights), registers it in a
fresh ``sqlite`` MLflow store, and measures:

* served: ``mlflow models serve`` on loopback, ``--requests`` requests of ONE pair (the same pair,
  two images, one prompt that yields >= 12 questions): latency p50 / p95 over HTTP, and the peak
  RSS (``VmHWM``) of the serving processes;
* API: :meth:`CompositeScorer.score_pairs` on ``--api-pairs`` distinct pairs, pairs/s, and the
  per-branch split of one pair (CLIP, quality features, VQA);
* Spark: ``t2ieval score-batch --master local[2]`` on ``--spark-pairs`` pairs, pairs/s of the
  whole command (session start and model load included) and of the scoring part alone;
* the floor: what a straightforward implementation runs for one pair -- per image a CLIP image
  encode plus a CLIP text encode of its prompt, and per (image, question): ViLT, the processor and
  one ``ViltForQuestionAnswering`` forward; BLIP, the processor, the vision encoder, the text
  encoder over the image embedding and the decoder scoring of "yes" and "no".

The ratio to watch is served p50 / floor. The device is chosen by itself (CUDA when present).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # checkpoints.py: random weights in the real layouts

#: yields 16 questions (objects, colours, a count and relations), capped at 12
PROMPT = (
    "two red circles to the left of a blue square, a green star above a yellow triangle, "
    "and a purple heart below an orange cross"
)
QUESTIONS_PER_IMAGE = 12
MODEL_NAME = "t2ieval-real-size"


def pick_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync(device: str) -> None:
    """Wait for queued GPU work so that wall-clock timings are honest."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- inputs ------------------------------------------------------------------------------------


def make_images(folder: Path, n: int, size: int = 512, seed: int = 0) -> list[Path]:
    """``n`` scene images of generated shapes (the synthetic renderer), saved as PNG files."""
    from t2ieval.data.synthetic import generate

    generated = folder / "generated"
    generate(generated, max(1, (n + 1) // 2), size=size, seed=seed, image_root=generated)
    table = pd.read_csv(generated / "pairs.csv")
    files = [Path(p) for p in list(table["image_1"]) + list(table["image_2"])]
    files = [p if p.is_absolute() else generated / p for p in files]
    return files[:n]


def write_manifest(folder: Path, images: list[Path], n_pairs: int) -> Path:
    """A manifest of ``n_pairs`` pairs of :data:`PROMPT` over ``images`` (used in turn)."""
    rows = []
    for k in range(n_pairs):
        a, b = images[(2 * k) % len(images)], images[(2 * k + 1) % len(images)]
        rows.append({"pair_id": f"p{k}", "prompt": PROMPT, "image_1": str(a), "image_2": str(b)})
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# ---- the model ---------------------------------------------------------------------------------


def build_model(
    work: Path,
    checkpoints: dict[str, Path],
    clip_arch: str,
    kind: str,
    images: list[Path],
    device: str,
    quantize: str = "none",
) -> dict[str, Path]:
    """The composite model's artifacts for one VQA ``kind`` (see the module docstring)."""
    from t2ieval.clip.model import create_clip, save_clip
    from t2ieval.entropy.spec import DEFAULT_ENTROPY_SPECS
    from t2ieval.fusion import fixed_weights
    from t2ieval.images import load_image
    from t2ieval.params import TrainSettings
    from t2ieval.pipeline.vqa import train_stage
    from t2ieval.quality.families import feature_names, image_feature_vector
    from t2ieval.quality.model import fit_quality_model

    art = work / (kind if quantize == "none" else f"{kind}-{quantize}")
    clip_dir = art / "clip"
    if not (clip_dir / "t2ieval_clip.json").is_file():
        bundle = create_clip(clip_arch, pretrained=str(checkpoints["clip"]))
        save_clip(bundle, clip_dir, info={"note": "random real-size weights, untrained heads"})
    quality_dir = art / "quality"
    if not quality_dir.is_dir():
        families = ("entropy", "nss", "handcrafted")
        feats = np.vstack(
            [
                image_feature_vector(load_image(str(p)), families, DEFAULT_ENTROPY_SPECS)
                for p in images
            ]
        )
        assert feats.shape[1] == len(feature_names(families, DEFAULT_ENTROPY_SPECS))
        n = len(images) // 2
        rng = np.random.default_rng(0)
        model = fit_quality_model(
            feats[:n],
            feats[n : 2 * n],
            rng.integers(1, 3, n),
            [f"prompt {i}" for i in range(n)],
            families=families,
            c_grid=[1.0],
        )
        model.save(quality_dir)
    vqa_dir = art / "vqa"
    if not (vqa_dir / "model.safetensors").is_file():
        train_stage(
            pd.DataFrame(columns=["image", "pair_id", "split", "prompt", "slot"]),
            None,
            enabled=True,
            model=str(checkpoints[kind]),
            kind=kind,
            device=device,
            settings=TrainSettings(),
            seed=0,
            train_embedded=False,
            max_questions=QUESTIONS_PER_IMAGE,
            out_dir=vqa_dir,
            load=load_image,
            quantize=quantize,
        )
    fusion = art / "fusion" / "weights.json"
    if not fusion.is_file():
        fusion.parent.mkdir(parents=True, exist_ok=True)
        fixed_weights().save(fusion)
    return {"clip": clip_dir, "quality": quality_dir, "vqa": vqa_dir, "fusion": fusion}


def register(artifacts: dict[str, Path], tracking_uri: str, example_images: list[Path]) -> str:
    """Log the pyfunc and register it as ``MODEL_NAME@champion``; returns the model URI."""
    import mlflow
    from mlflow import MlflowClient

    from t2ieval.serving.package import input_example, log_composite_model
    from t2ieval.tracking import using_tracking_uri

    # the block puts MLflow's URIs back: run in-process (the test), the caller's store is kept
    with using_tracking_uri(tracking_uri):
        mlflow.set_experiment("real-size-benchmark")
        with mlflow.start_run():
            info = log_composite_model(artifacts, input_example(PROMPT, *example_images[:2]))
        version = mlflow.register_model(info.model_uri, MODEL_NAME)
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version.version)
    return f"models:/{MODEL_NAME}@champion"


# ---- served ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root.pid] + [c.pid for c in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def peak_rss_mb(pids: list[int]) -> tuple[float, float]:
    """(largest, summed) peak resident set (``VmHWM``) of ``pids``, in MiB."""
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024.0)
        except OSError:
            continue
    return (max(peaks) if peaks else float("nan"), sum(peaks) if peaks else float("nan"))


def served(model_uri: str, tracking_uri: str, images: list[Path], requests: int) -> dict:
    """Latency of ``requests`` one-pair requests, and the server's peak memory."""
    from t2ieval.images import encode_image_base64
    from t2ieval.serving.server import ModelServer, split_body

    body = split_body(
        [
            {
                "prompt": PROMPT,
                "image_1": encode_image_base64(images[0]),
                "image_2": encode_image_base64(images[1]),
            }
        ]
    )
    t0 = time.perf_counter()
    with ModelServer(model_uri, tracking_uri=tracking_uri, startup_timeout=600) as server:
        ready = time.perf_counter() - t0
        first = server.invoke(body)  # warm-up, not timed
        if first.status != 200:
            raise RuntimeError(f"HTTP {first.status}: {first.message[:2000]}")
        row = first.body["predictions"][0]
        latencies = []
        for _ in range(requests):
            t = time.perf_counter()
            response = server.invoke(body)
            latencies.append(time.perf_counter() - t)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {response.message[:2000]}")
        largest, total = peak_rss_mb(process_tree(server.proc.pid))
    lat = np.asarray(latencies) * 1000.0
    return {
        "ready_s": ready,
        "p50_ms": float(np.median(lat)),
        "p95_ms": float(np.percentile(lat, 95)),
        "requests": requests,
        "peak_rss_mb": largest,
        "peak_rss_sum_mb": total,
        "row": row,
    }


# ---- Python API --------------------------------------------------------------------------------


def api(
    artifacts: dict[str, Path], images: list[Path], n_pairs: int, device: str, repeats: int
) -> dict:
    """Pairs/s of :meth:`CompositeScorer.score_pairs`, and one pair's time per branch."""
    from t2ieval.images import load_image
    from t2ieval.scoring import CompositeScorer

    scorer = CompositeScorer.load({k: str(v) for k, v in artifacts.items()}, device=device)
    pil = [load_image(str(p)) for p in images]
    a = [pil[(2 * k) % len(pil)] for k in range(n_pairs)]
    b = [pil[(2 * k + 1) % len(pil)] for k in range(n_pairs)]
    scorer.score_pairs([PROMPT], a[:1], b[:1])  # warm-up
    sync(device)
    t = time.perf_counter()
    out = scorer.score_pairs([PROMPT] * n_pairs, a, b)
    sync(device)
    elapsed = time.perf_counter() - t
    assert len(out) == n_pairs and np.isfinite(out["score_1"]).all()
    pair = [pil[0], pil[1]]
    split: dict[str, list[float]] = {"clip": [], "quality": [], "vqa": []}
    n_questions = 0
    for _ in range(repeats):
        for name, fn in (
            ("clip", lambda: scorer.clip.score([PROMPT] * 2, pair)),
            ("quality", lambda: scorer.ce.score(pair)),
            ("vqa", lambda: scorer.vqa.score_images([PROMPT] * 2, pair)),
        ):
            sync(device)
            t = time.perf_counter()
            result = fn()
            sync(device)
            split[name].append((time.perf_counter() - t) * 1000.0)
            if name == "vqa":
                n_questions = len(result[1])
    return {
        "pairs": n_pairs,
        "pairs_per_s": n_pairs / elapsed,
        "split_ms": {k: statistics.median(v) for k, v in split.items()},
        "questions_per_pair": n_questions,
    }


# ---- Spark -------------------------------------------------------------------------------------


def spark(model_uri: str, tracking_uri: str, manifest: Path, n_pairs: int, out: Path) -> dict:
    """``t2ieval score-batch --master local[2]``: pairs/s of the whole command."""
    cli = Path(sys.executable).parent / "t2ieval"
    cmd = (
        [str(cli)] if cli.exists() else [sys.executable, "-c", "from t2ieval.cli import app; app()"]
    )
    cmd += [
        "score-batch",
        "--manifest",
        str(manifest),
        "--model",
        model_uri,
        "--out",
        str(out),
        "--master",
        "local[2]",
        "--overwrite",
        "--batch-size",
        "8",
    ]
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=tracking_uri,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"score-batch failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    scored = pd.read_parquet(out)
    assert len(scored) == n_pairs, len(scored)
    return {"pairs": n_pairs, "wall_s": elapsed, "pairs_per_s": n_pairs / elapsed}


# ---- the floor ---------------------------------------------------------------------------------


@dataclass
class Floor:
    """Milliseconds of the plain forward passes of one pair (two images, their questions)."""

    clip_ms: float = 0.0
    vqa_ms: float = 0.0
    vqa_image_ms: float = 0.0  # BLIP: the vision encoder's share (per (image, question) here)
    per_question_ms: list[float] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return self.clip_ms + self.vqa_ms


def floor(
    kind: str,
    checkpoints: dict[str, Path],
    clip_arch: str,
    images: list[Path],
    questions: list[str],
    device: str,
    repeats: int,
) -> Floor:
    """Time a straightforward implementation's forward passes for one pair (median of repeats)."""
    import open_clip

    from t2ieval.clip.model import register_configs
    from t2ieval.images import load_image

    register_configs()
    pair = [load_image(str(p)) for p in images[:2]]
    clip, _, preprocess = open_clip.create_model_and_transforms(
        clip_arch, pretrained=str(checkpoints["clip"]), device=device
    )
    clip.eval()
    tokenizer = open_clip.get_tokenizer(clip_arch)
    results = []
    with torch.inference_mode():
        vqa = _floor_vqa(kind, checkpoints[kind], device)
        vqa(pair[0], questions[0])  # warm-up
        clip.encode_image(preprocess(pair[0]).unsqueeze(0).to(device))
        for _ in range(repeats):
            f = Floor()
            sync(device)
            t = time.perf_counter()
            for img in pair:  # per image: its own image encode and its prompt's text encode
                clip.encode_image(preprocess(img).unsqueeze(0).to(device))
                clip.encode_text(tokenizer([PROMPT]).to(device))
            sync(device)
            f.clip_ms = (time.perf_counter() - t) * 1000.0
            for img in pair:
                for q in questions:
                    sync(device)
                    t = time.perf_counter()
                    image_ms = vqa(img, q)
                    sync(device)
                    ms = (time.perf_counter() - t) * 1000.0
                    f.per_question_ms.append(ms)
                    f.vqa_ms += ms
                    f.vqa_image_ms += image_ms
            results.append(f)
    results.sort(key=lambda r: r.total_ms)
    return results[len(results) // 2]


def _floor_vqa(kind: str, folder: Path, device: str):
    """A function ``(image, question) -> ms spent in the image encoder`` running the plain
    forward passes of one (image, question)."""
    if kind == "vilt":
        from transformers import ViltForQuestionAnswering, ViltProcessor

        model = ViltForQuestionAnswering.from_pretrained(folder).to(device).eval()
        processor = ViltProcessor.from_pretrained(folder)
        yes = model.config.label2id["yes"]

        def run(img: Image.Image, question: str) -> float:
            enc = processor(images=img, text=question, return_tensors="pt").to(device)
            logits = model(**enc).logits
            torch.sigmoid(logits[0, yes]).item()
            return 0.0

        return run

    from transformers import BlipForQuestionAnswering, BlipProcessor

    model = BlipForQuestionAnswering.from_pretrained(folder).to(device).eval()
    processor = BlipProcessor.from_pretrained(folder)
    tok = processor.tokenizer
    bos = model.config.text_config.bos_token_id
    sep = model.config.text_config.sep_token_id
    pad = model.config.text_config.pad_token_id
    spelled = [[bos, *tok(w, add_special_tokens=False)["input_ids"], sep] for w in ("yes", "no")]
    width = max(len(a) for a in spelled)
    answers = torch.tensor([a + [pad] * (width - len(a)) for a in spelled], device=device)
    answer_mask = torch.tensor(
        [[1] * len(a) + [0] * (width - len(a)) for a in spelled], device=device
    )

    def run(img: Image.Image, question: str) -> float:
        enc = processor(images=img, text=question, return_tensors="pt").to(device)
        sync(device)
        t = time.perf_counter()
        image_embeds = model.vision_model(pixel_values=enc["pixel_values"])[0]
        sync(device)
        image_ms = (time.perf_counter() - t) * 1000.0
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=device)
        q = model.text_encoder(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
        )[0]
        logits = model.text_decoder(
            input_ids=answers,
            attention_mask=answer_mask,
            encoder_hidden_states=q.expand(2, -1, -1),
            encoder_attention_mask=enc["attention_mask"].expand(2, -1),
            return_logits=True,
        )  # [2, T-1, V]: "yes" and "no" scored
        logp = torch.log_softmax(logits.float(), dim=-1)
        token_ll = logp.gather(-1, answers[:, 1:].unsqueeze(-1)).squeeze(-1)
        ll = (token_ll * answer_mask[:, 1:]).sum(-1)
        torch.sigmoid(ll[0] - ll[1]).item()
        return image_ms

    return run


# ---- main --------------------------------------------------------------------------------------


def run_kind(
    kind: str,
    args: argparse.Namespace,
    work: Path,
    checkpoints: dict[str, Path],
    clip_arch: str,
    images: list[Path],
    device: str,
) -> dict:
    """Every measurement of one VQA kind."""
    artifacts = build_model(work, checkpoints, clip_arch, kind, images, device, args.quantize)
    uri = f"sqlite:///{artifacts['vqa'].parent / 'mlflow.db'}"
    model_uri = register(artifacts, uri, images)
    result: dict = {"kind": kind}
    print(f"[{kind}] serving {args.requests} requests ...", flush=True)
    result["served"] = served(model_uri, uri, images, args.requests)
    print(f"[{kind}] served: {_brief(result['served'])}", flush=True)
    print(f"[{kind}] Python API on {args.api_pairs} pairs ...", flush=True)
    result["api"] = api(artifacts, images, args.api_pairs, device, args.repeats)
    print(f"[{kind}] API: {_brief(result['api'])}", flush=True)
    from t2ieval.scaling.spark import ensure_java

    if not args.no_spark:
        print(f"[{kind}] Spark score-batch on {args.spark_pairs} pairs ...", flush=True)
        ensure_java()
        folder = artifacts["vqa"].parent
        manifest = write_manifest(folder, images, args.spark_pairs)
        result["spark"] = spark(
            model_uri, uri, manifest, args.spark_pairs, folder / "scored.parquet"
        )
        print(f"[{kind}] Spark: {_brief(result['spark'])}", flush=True)
    print(f"[{kind}] the floor ...", flush=True)
    from t2ieval.vqa.parse import parse_prompts
    from t2ieval.vqa.questions import make_questions

    questions = [q.text for q in make_questions(parse_prompts([PROMPT])[0], QUESTIONS_PER_IMAGE)]
    result["floor"] = floor(kind, checkpoints, clip_arch, images, questions, device, args.repeats)
    result["questions_per_image"] = len(questions)
    print(f"[{kind}] floor: {_brief(result['floor'].__dict__)}", flush=True)
    return result


def _brief(values: dict) -> str:
    """A one-line view of a result, lists and rows left out (progress output)."""
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in values.items()
        if not isinstance(v, (list, dict))
    )


def print_table(results: list[dict], device: str, args: argparse.Namespace) -> None:
    """The summary table and, per kind, what the served p50 is made of."""
    threads = torch.get_num_threads()
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}; "
        f"{os.cpu_count()} CPUs, torch threads {threads}; device {device}; size {args.size}; "
        f"{QUESTIONS_PER_IMAGE} questions per image; served and API with vqa.quantize "
        f"{args.quantize} (the floor in fp32)"
    )
    head = (
        f"{'kind':5s} {'p50 ms':>8s} {'p95 ms':>8s} {'floor ms':>9s} {'served/floor':>12s} "
        f"{'API pairs/s':>11s} {'Spark pairs/s':>13s} {'peak RSS MiB':>12s}"
    )
    print(head)
    for r in results:
        s, f = r["served"], r["floor"]
        sp = f"{r['spark']['pairs_per_s']:13.3f}" if "spark" in r else f"{'-':>13s}"
        print(
            f"{r['kind']:5s} {s['p50_ms']:8.0f} {s['p95_ms']:8.0f} {f.total_ms:9.0f} "
            f"{s['p50_ms'] / f.total_ms:12.2f} {r['api']['pairs_per_s']:11.3f} {sp} "
            f"{s['peak_rss_mb']:12.0f}"
        )
    for r in results:
        s, f, a = r["served"], r["floor"], r["api"]["split_ms"]
        branches = a["clip"] + a["quality"] + a["vqa"]
        print(
            f"{r['kind']}: served p50 {s['p50_ms']:.0f} ms = CLIP {a['clip']:.0f} + quality "
            f"features {a['quality']:.0f} + VQA {a['vqa']:.0f} ({r['api']['questions_per_pair']}"
            f" questions) + HTTP/decoding/rest {s['p50_ms'] - branches:.0f}; floor "
            f"{f.total_ms:.0f} ms = CLIP {f.clip_ms:.0f} + VQA {f.vqa_ms:.0f} "
            f"({len(f.per_question_ms)} (image, question) passes, median "
            f"{statistics.median(f.per_question_ms):.0f} ms"
            + (f", of which the image encoder {f.vqa_image_ms:.0f} ms" if f.vqa_image_ms else "")
            + f"); server ready in {s['ready_s']:.0f} s"
            + (
                f"; Spark wall {r['spark']['wall_s']:.0f} s for {r['spark']['pairs']} pairs"
                if "spark" in r
                else ""
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoints",
        default=None,
        help="folder of `python tests/checkpoints.py DIR` (default: write them)",
    )
    parser.add_argument("--size", choices=("real", "tiny"), default="real")
    parser.add_argument("--kinds", default="vilt,blip")
    parser.add_argument("--requests", type=int, default=10, help="served one-pair requests")
    parser.add_argument("--api-pairs", type=int, default=4)
    parser.add_argument("--spark-pairs", type=int, default=4)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="repeats of the floor and of the per-branch split (median)",
    )
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument(
        "--quantize",
        choices=("none", "bf16", "int8"),
        default="none",
        help="vqa.quantize of the served and API model (CPU; docs/vqa.md)",
    )
    parser.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from checkpoints import CLIP_ARCHITECTURES, OPEN_CLIP_FILE, write_all

    device = pick_device()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="t2ieval-real-size-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.checkpoints:
            folder = Path(args.checkpoints)
            checkpoints = {
                "clip": folder / "clip" / OPEN_CLIP_FILE,
                "vilt": folder / "vilt",
                "blip": folder / "blip",
            }
        else:
            print(f"writing {args.size} checkpoints into {work / 'checkpoints'} ...", flush=True)
            checkpoints = write_all(work / "checkpoints", size=args.size)
        clip_arch = CLIP_ARCHITECTURES[args.size]
        images = make_images(work / "images", max(4, 2 * max(args.api_pairs, args.spark_pairs)))
        results = [
            run_kind(kind, args, work, checkpoints, clip_arch, images, device)
            for kind in args.kinds.split(",")
        ]
        print_table(results, device, args)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    [
                        {**r, "floor": {**r["floor"].__dict__, "total_ms": r["floor"].total_ms}}
                        for r in results
                    ],
                    indent=2,
                    default=str,
                )
            )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
