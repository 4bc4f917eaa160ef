"""The whole pipeline on real generated images: a copy of this project, `dvc repro` on a manifest.

    python benchmarks/real_pipeline.py --data ../shared/data/avt-ai-images --out /tmp/avt-project

Copies the repository's files into ``--out`` (a fresh git repository), points ``data.manifest``
at ``<data>/pairs.csv``, turns the D-branch off (``--vqa off``; or gives a local VQA checkpoint
folder), runs ``dvc repro`` there, and prints every branch's and the fusion's test accuracy with
its 95 % interval over prompts. It is what a user with their own rated images does; the data
set is not part of this repository (see its README for its licence).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pipeline import copy_project, env, write_params  # noqa: E402  (the tests' project copier)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/avt-ai-images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vqa", default="off", help="off, or a local VQA checkpoint folder")
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=[0.5, 0.25, 0.25],
        metavar=("TRAIN", "VAL", "TEST"),
        help="shares of prompt groups",
    )
    args = parser.parse_args()
    manifest = (args.data / "pairs.csv").resolve()
    if not manifest.is_file():
        sys.exit(f"{manifest}: not found; pass --data")
    if args.out.exists():
        sys.exit(f"{args.out} exists; pass a new folder")
    project = copy_project(args.out)
    vqa = (
        {"enabled": False}
        if args.vqa == "off"
        else {"model": str(Path(args.vqa).resolve()), "train_embedded": False}
    )
    write_params(
        project,
        {
            "data": {"source": "manifest", "manifest": str(manifest)},
            "split": dict(zip(("train", "val", "test"), args.split)),
            "vqa": vqa,
        },
    )
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "real data"],
        [str(Path(sys.executable).parent / "dvc"), "repro"],
    ):
        subprocess.run(cmd, cwd=project, env=env(), check=True)
    m = json.loads((project / "metrics" / "evaluate.json").read_text())
    print(
        f"pairs train/val/test {m['pairs_train']}/{m['pairs_val']}/{m['pairs_test']}, "
        f"branches {m['branches']}, fusion {m['mode']}"
    )
    keys = (
        ["test_accuracy"]
        + [f"test_accuracy_{b}" for b in m["branches"].split(",")]
        + ["val_accuracy"]
        + [f"val_accuracy_{b}" for b in m["branches"].split(",")]
    )
    for key in keys:
        print(f"{key:24s} {m[key]:.3f}  [{m[key + '_ci_low']:.3f}, {m[key + '_ci_high']:.3f}]")
    fuse = json.loads((project / "metrics" / "fuse.json").read_text())
    print(
        "learned fusion:",
        fuse.get("learned_choice"),
        {k: round(v, 3) for k, v in fuse.items() if k.startswith("learned_candidate.")},
    )


if __name__ == "__main__":
    main()
