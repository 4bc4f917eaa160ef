"""The registered model served for real by ``mlflow models serve``, against the Python API.

One server (``--env-manager local``, a free loopback port) serves the tiny project's
``models:/t2ieval@champion`` for the whole module and is stopped in the fixture's teardown.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import struct
import threading
import zlib
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from t2ieval.evaluator import Evaluator
from t2ieval.images import DEFAULT_MAX_PIXELS
from t2ieval.serving.pyfunc import OUTPUT_COLUMNS
from t2ieval.serving.server import ModelServer, split_body

from helpers import TOL, column_tolerance, fused_tolerance

pytestmark = pytest.mark.slow

MODEL_URI = "models:/t2ieval@champion"
BRANCH_COLUMNS = [c for c in OUTPUT_COLUMNS if c not in ("preferred", "branches")]


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width x height`` pixels (no pixel data follows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def server(tiny_tracking):
    srv = ModelServer(MODEL_URI, tracking_uri=tiny_tracking)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def evaluator(tiny_evaluator) -> Evaluator:
    return tiny_evaluator


@pytest.fixture(scope="module")
def pairs(tiny_project) -> pd.DataFrame:
    """Four test pairs of the tiny project, image paths absolute."""
    table = pd.read_csv(tiny_project / "data" / "split" / "pairs.csv", dtype={"pair_id": str})
    table = table[table["split"] == "test"].head(4).reset_index(drop=True)
    for col in ("image_1", "image_2"):
        table[col] = [tiny_project / p for p in table[col]]
    return table


@pytest.fixture(scope="module")
def good_body(pairs) -> dict:
    row = pairs.iloc[0]
    return split_body(
        [{"prompt": row["prompt"], "image_1": b64(row["image_1"]), "image_2": b64(row["image_2"])}]
    )


def test_pairs_score_like_the_python_api(server, evaluator, pairs):
    body = split_body(
        pd.DataFrame(
            {
                "prompt": pairs["prompt"],
                "image_1": [b64(p) for p in pairs["image_1"]],
                "image_2": [b64(p) for p in pairs["image_2"]],
            }
        )
    )
    response = server.invoke(body)
    assert response.status == 200, response.message
    out = response.frame()
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == len(pairs)
    assert set(out["preferred"]) <= {1, 2}
    assert set(out["branches"]) == {"clip,ce,d"}
    for i, row in pairs.iterrows():
        v = evaluator.compare(row["prompt"], row["image_1"], row["image_2"])
        for col in BRANCH_COLUMNS:
            tol = column_tolerance(col, evaluator.scorer.fusion)
            assert out.loc[i, col] == pytest.approx(getattr(v, col), abs=tol), (i, col)
        assert out.loc[i, "preferred"] == v.preferred
        expected = 2 if out.loc[i, "score_2"] > out.loc[i, "score_1"] else 1
        assert out.loc[i, "preferred"] == expected


def test_single_image_rows_score_alone_with_json_nulls(server, evaluator, pairs):
    row = pairs.iloc[1]
    body = {
        "dataframe_records": [
            {"prompt": row["prompt"], "image_1": b64(row["image_1"])},
            {"prompt": row["prompt"], "image_1": b64(row["image_2"]), "image_2": None},
            {
                "prompt": row["prompt"],
                "image_1": b64(row["image_1"]),
                "image_2": b64(row["image_2"]),
            },
        ]
    }
    response = server.invoke(body)
    assert response.status == 200, response.message
    assert "NaN" not in response.text
    json.loads(response.text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    got = response.body["predictions"]
    expected = evaluator.details(row["prompt"], [row["image_1"], row["image_2"]])
    for k in (0, 1):
        assert got[k]["preferred"] == 0
        assert got[k]["score_1"] == pytest.approx(
            expected[k].score, abs=fused_tolerance(evaluator.scorer.fusion)
        )
        assert got[k]["clip_score_1"] == pytest.approx(expected[k].clip_score, abs=TOL)
        assert got[k]["d_score_1"] == pytest.approx(expected[k].d_score, abs=TOL)
        assert all(got[k][f"{b}_2"] is None for b in ("score", "clip_score", "ce_score", "d_score"))
    assert got[2]["preferred"] in (1, 2)
    assert got[2]["ce_score_2"] == pytest.approx(expected[1].ce_score, abs=TOL)


def test_encodebytes_form_scores_like_b64encode(server, pairs):
    row = pairs.iloc[2]
    wrapped = {
        "prompt": row["prompt"],
        "image_1": base64.encodebytes(row["image_1"].read_bytes()).decode("ascii"),
        "image_2": base64.encodebytes(row["image_2"].read_bytes()).decode("ascii"),
    }
    assert "\n" in wrapped["image_1"]
    plain = {
        "prompt": row["prompt"],
        "image_1": b64(row["image_1"]),
        "image_2": b64(row["image_2"]),
    }
    a = server.invoke(split_body([wrapped])).frame()
    b = server.invoke(split_body([plain])).frame()
    pd.testing.assert_frame_equal(a, b, atol=TOL, rtol=0)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits += 1
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def url_trap():
    """A local HTTP server counting the requests it gets: a fetched image URL would show here."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/image.png", _CountingHandler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _bad_cases(pairs, url: str) -> dict[str, tuple[dict, list[str]]]:
    row = pairs.iloc[0]
    prompt, a, b = row["prompt"], b64(row["image_1"]), b64(row["image_2"])
    good = {"prompt": prompt, "image_1": a, "image_2": b}
    truncated = png_bytes(Image.open(row["image_1"]))[:80]
    return {
        "missing column": (split_body([{"prompt": prompt, "image_2": b}]), ["image_1", "missing"]),
        "empty prompt": (
            split_body([good, {**good, "prompt": "   "}]),
            ["row 1", "prompt is empty"],
        ),
        "invalid base64": (
            split_body([{**good, "image_2": "not*base64!"}]),
            ["row 0", "image_2", "invalid base64"],
        ),
        "not an image": (
            split_body(
                [
                    good,
                    good,
                    {**good, "image_1": base64.b64encode(b"just some text, no image").decode()},
                ]
            ),
            ["row 2", "image_1", "not an image"],
        ),
        "truncated image": (
            split_body([{**good, "image_1": base64.b64encode(truncated).decode()}]),
            ["row 0", "image_1", "truncated"],
        ),
        "over the pixel limit": (
            split_body(
                [good, {**good, "image_2": base64.b64encode(png_header_only(8000, 8000)).decode()}]
            ),
            ["row 1", "image_2", "over the limit", str(DEFAULT_MAX_PIXELS)],
        ),
        "image too small to score": (
            split_body(
                [
                    good,
                    {
                        **good,
                        "image_2": base64.b64encode(png_bytes(Image.new("RGB", (1, 1)))).decode(),
                    },
                ]
            ),
            ["row 1", "image_2", "cannot be scored"],
        ),
        "number as prompt": (
            {
                "dataframe_split": {
                    "columns": ["prompt", "image_1", "image_2"],
                    "data": [[prompt, a, b], [42, a, b]],
                }
            },
            ["row 1", "prompt must be a string", "int"],
        ),
        "number as image": (
            {
                "dataframe_split": {
                    "columns": ["prompt", "image_1", "image_2"],
                    "data": [[prompt, a, 7]],
                }
            },
            ["row 0", "image_2", "expected a base64 string", "int"],
        ),
        "object as image": (
            {"dataframe_records": [good, {**good, "image_1": {"url": url}}]},
            ["row 1", "image_1", "expected a base64 string", "dict"],
        ),
        "URL as image": (
            split_body([{**good, "image_1": url}]),
            ["row 0", "image_1", "URLs are not fetched"],
        ),
    }


CASES = [
    "missing column",
    "empty prompt",
    "invalid base64",
    "not an image",
    "truncated image",
    "over the pixel limit",
    "image too small to score",
    "number as prompt",
    "number as image",
    "object as image",
    "URL as image",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_400_naming_the_row_and_the_server_keeps_answering(
    server, pairs, good_body, url_trap, case
):
    url, trap = url_trap
    body, needles = _bad_cases(pairs, url)[case]
    response = server.invoke(body)
    assert response.status == 400, (response.status, response.text[:2000])
    for needle in needles:
        assert needle in response.message, (needle, response.message[-1500:])
    assert trap.hits == 0, "the server fetched a URL from the input"
    after = server.invoke(good_body)
    assert after.status == 200, after.message
    assert len(after.frame()) == 1
    assert server.proc is not None and server.proc.poll() is None
