"""DVC stage ``split``: train / validation / test by prompt group."""

from __future__ import annotations

from t2ieval.data.split import assign_splits, image_table, split_summary
from t2ieval.io import read_table, write_metrics, write_table
from t2ieval.paths import PREPARED_PAIRS, SPLIT_IMAGES, SPLIT_PAIRS
from t2ieval.pipeline import start_stage


def main() -> None:
    p = start_stage(torch=False).split
    pairs = read_table(
        PREPARED_PAIRS, ["pair_id", "prompt", "image_1", "image_2", "preferred", "category"]
    )
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    split = assign_splits(pairs, p.train, p.val, p.test, p.seed)
    write_table(SPLIT_PAIRS, split)
    write_table(SPLIT_IMAGES, image_table(split))
    write_metrics("split", split_summary(split))


if __name__ == "__main__":
    main()
