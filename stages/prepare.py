"""DVC stage ``prepare``: generate the embedded synthetic set or import the user's manifest."""

from __future__ import annotations

from t2ieval.io import write_metrics
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.data import prepare_stage


def main() -> None:
    write_metrics("prepare", prepare_stage(start_stage(torch=False).data))


if __name__ == "__main__":
    main()
