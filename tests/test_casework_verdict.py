"""Casework's conditions and verdict without a finished run (issue 19, items 2 and 4): the colour
mode as a condition (measured on an item and on a pool's sources), the accepted conditions in
words, and the verdict of judged matrix rows. The demo-run tests are in test_casework_demo.py."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from common.conditions import (check_conditions, colour_channels, describe_conditions, measure_frame,
                               pool_conditions)
from evaluation.verdict import DEGENERATE, FAILED, NOT_VALIDATED, PASSED, describe, verdict
from test_casework import portrait


def test_colour_channels_of_gray_colour_and_codec_rounded_frames():
    rgb = cv2.resize(portrait(), (120, 120))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    stored_as_rgb = np.repeat(gray[..., None], 3, axis=2)
    noisy = stored_as_rgb.astype(np.int16)
    noisy[..., 0] += 3                                   # a codec's rounding: within the tolerance
    assert colour_channels(gray) == 1 and colour_channels(stored_as_rgb) == 1
    assert colour_channels(np.clip(noisy, 0, 255).astype(np.uint8)) == 1
    noisy[..., 0] += 1
    assert colour_channels(np.clip(noisy, 0, 255).astype(np.uint8)) == 3
    assert colour_channels(rgb) == 3 and colour_channels(rgb, (10, 10, 60, 60)) == 3
    assert measure_frame(stored_as_rgb, (10, 10, 60, 60))["colour_channels"] == 1


def test_pool_records_the_colour_mode_and_a_gray_item_is_outside(tmp_path):
    from preprocessing.crop import MANIFEST_COLUMNS
    face = cv2.resize(portrait(), (160, 160))
    (tmp_path / "in" / "real").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "real" / "a.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "in" / "real" / "g.png"), cv2.cvtColor(face, cv2.COLOR_RGB2GRAY))
    box = dict(box_left=20, box_top=30, box_right=120, box_bottom=130, frame_width=160, frame_height=160)
    (tmp_path / "ds").mkdir()
    with open(tmp_path / "ds" / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for vid in ("a", "g"):
            w.writerow({c: v for c, v in dict(video_id=vid, label=0, source=f"real/{vid}.png", frame_idx=0,
                                               status="ok", crop="x", **box).items()})
    colour = pool_conditions(tmp_path / "ds", videos=["a"], input_root=tmp_path / "in")
    both = pool_conditions(tmp_path / "ds", videos=["a", "g"], input_root=tmp_path / "in")
    assert (colour["ranges"]["colour_channels"]["min"], colour["ranges"]["colour_channels"]["max"]) == (3, 3)
    assert (both["ranges"]["colour_channels"]["min"], both["ranges"]["colour_channels"]["max"]) == (1, 3)
    gray_item = {"colour_channels": {"value": 1}}
    out = check_conditions(gray_item, colour, ["colour_channels"])
    assert [e["name"] for e in out["outside"]] == ["colour_channels"]
    assert [e["name"] for e in check_conditions(gray_item, both, ["colour_channels"])["inside"]] == ["colour_channels"]
    assert "colour faces only (a grayscale face is outside)" in describe_conditions(colour)
    assert "colour and grayscale faces" in describe_conditions(both)


def test_accepted_conditions_in_words():
    cond = {"ranges": {"image_width_px": {"min": 320.0, "max": 320.0, "n": 9},
                       "image_height_px": {"min": 320.0, "max": 320.0, "n": 9},
                       "face_box_px": {"min": 96.4, "max": 140.0, "n": 9},
                       "jpeg_quality": {"min": None, "max": None, "n": 0},
                       "blockiness": {"min": 0.91, "max": 1.62, "n": 9},
                       "colour_channels": {"min": 3.0, "max": 3.0, "n": 9},
                       "frames_per_video": {"min": 8.0, "max": 8.0, "n": 2},
                       "track_length": {"min": 6.0, "max": 8.0, "n": 2}},
            "notes": {"jpeg_quality": "not estimable for this pool's sources (video)"},
            "validated_degradations": {"jpeg": {"min_quality": 50, "status": "validated"},
                                       "blur": {"max_sigma": None, "status": "failed at the mildest"}}}
    words = describe_conditions(cond)
    assert words[:2] == ["images 320x320 px", "face boxes 96.4-140 px (square root of width x height of the face "
                                               "detector's box in the source frame)"]
    assert words[2] == ("JPEG quality: not checked (not estimable for this pool's sources (video)); PNG images and "
                        "videos have no JPEG table either")
    assert "8x8 block-grid strength (blockiness) 0.91-1.62 in the face box" in words
    assert "videos with 8 frames read" in words and "validated jpeg degradation: min quality 50 (robustness stage)" in words
    assert any(w.startswith("blur degradation: none validated") for w in words)
    assert not any("None" in w or "null" in w or "{" in w for w in words)
    assert describe_conditions(None)[0].startswith("no conditions are recorded")


def _row(decision, metric="cllr", value=1.09):
    return {"metric": metric, "level": "frame", "pool": "test", "criterion": f"{metric} ≤ 0.5", "judged_value": value,
            "basis": "pessimistic end of the 95 % interval", "decision": decision}


@pytest.mark.parametrize("rows, degenerate, status, n_failed", [
    ([_row("pass"), _row("pass", "eer", 0.05)], [], PASSED, 0),
    ([_row("pass"), _row("fail", "eer", 0.3), _row("not available", "auc", None)], [], FAILED, 2),
    ([_row("not passed (degenerate system)")], ["frame level: every LR is 1"], DEGENERATE, 1),
    ([{**_row("reported"), "metric": "direction_changes"}], [], NOT_VALIDATED, 0),
])
def test_verdict_of_matrix_rows(rows, degenerate, status, n_failed):
    v = verdict(rows, degenerate, "ab" * 32)
    assert v["status"] == status and v["n_failed"] == n_failed
    assert [f["metric"] for f in v["failed"]] == [r["metric"] for r in rows if r["decision"] not in ("pass", "reported")]
    text = describe(v)
    assert ("ab" * 32) in text and (status == PASSED) == ("NOT VALIDATED" not in text)
    if status == FAILED:
        assert f"{n_failed} of 3 criteria not passed" in text and "eer ≤ 0.5 (frame, test): 0.3;" in text
        assert text.endswith("auc ≤ 0.5 (frame, test): not available") and "cllr ≤ 0.5" not in text
    if status == DEGENERATE:
        assert "a degenerate system (frame level: every LR is 1); 1 of 1 criteria not passed" in text
