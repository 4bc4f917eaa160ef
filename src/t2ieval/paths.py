"""Where each stage reads and writes, relative to the project root (the DVC repo).

One place for these names so that dvc.yaml, the stages and the tests agree.
"""

from __future__ import annotations

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
PREPARED_PAIRS = PREPARED_DIR / "pairs.csv"  # pair_id,prompt,image_1,image_2,preferred,category
PREPARED_IMAGES = PREPARED_DIR / "images"  # every image, converted once to RGB PNG
PREPARED_QA = PREPARED_DIR / "qa.csv"  # image,pair_id,question,answer,kind (synthetic only)
PREPARED_SCENES = PREPARED_DIR / "scenes.jsonl"  # scene graph of every synthetic image

SPLIT_DIR = Path("data/split")
SPLIT_PAIRS = SPLIT_DIR / "pairs.csv"  # prepared pairs + split (train|val|test)
SPLIT_IMAGES = (
    SPLIT_DIR / "images.csv"
)  # image,pair_id,split,prompt,slot(1|2),preferred(0|1),category

SCORES_DIR = Path("data/scores")  # <branch>.csv: pair_id,split,score_1,score_2


def scores_path(branch: str) -> Path:
    """Per-pair scores of one branch: ``clip``, ``ce`` or ``d``."""
    return SCORES_DIR / f"{branch}.csv"


QUALITY_FEATURES = Path("data/features/quality.csv")  # image + one column per quality feature
VQA_DIR = Path("data/vqa")  # answers.csv: per-question answers

CLIP_MODEL_DIR = Path("models/clip")
QUALITY_MODEL_DIR = Path("models/quality")
VQA_MODEL_DIR = Path("models/vqa")
FUSION_DIR = Path("models/fusion")
FUSION_WEIGHTS = FUSION_DIR / "weights.json"  # the chosen fusion (fixed.json, learned.json beside)
FUSED_DIR = Path("data/fused")  # pairs.csv: every pair, every score, verdict
REPORTS_DIR = Path("reports")
RESULT_FILE = REPORTS_DIR / "result.csv"  # the test split's verdicts (a DVC output)
REGISTRY_FILE = REPORTS_DIR / "registry.json"  # MLflow run id and model version: not tracked
