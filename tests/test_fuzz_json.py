"""Crash-freedom of the JSON readers: any JSON value ends in a result or a ValueError, in bounded time."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bprefine.data.coco import (
    ImageInfo,
    checked_results,
    decode_segmentation,
    load_ground_truth,
    load_image_info,
    load_results,
)
from bprefine.data.panoptic import load_panoptic_json

H, W = 12, 16
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=6)),
                           max_leaves=30)
numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True))
segmentations = st.one_of(
    json_values,
    st.lists(st.lists(numbers, max_size=10), max_size=3),  # polygon-like
    st.fixed_dictionaries({"size": st.lists(st.integers(-5, 40), max_size=3),
                           "counts": st.one_of(st.text(max_size=20), st.lists(numbers, max_size=8))}),
)
entries = st.fixed_dictionaries({"image_id": st.one_of(st.just(1), scalars), "segmentation": segmentations},
                                optional={"category_id": scalars, "score": scalars, "bbox": json_values})
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(segmentations)
def test_decode_segmentation_never_crashes(seg):
    try:
        mask = decode_segmentation(seg, H, W)
    except ValueError:
        return
    assert mask.shape == (H, W)


@FUZZ
@given(st.lists(entries, max_size=4))
def test_results_readers_never_crash(tmp_path_factory, results):
    path = tmp_path_factory.mktemp("r") / "pred.json"
    path.write_text(json.dumps(results))
    infos = {1: ImageInfo(1, "a.png", H, W)}
    try:
        checked_results(load_results(path), infos, path)
    except ValueError:
        pass


@FUZZ
@given(st.fixed_dictionaries({}, optional={"images": json_values, "annotations": st.lists(entries, max_size=3),
                                           "categories": json_values}))
def test_ground_truth_reader_never_crashes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("g") / "gt.json"
    path.write_text(json.dumps(data))
    try:
        load_image_info(path)
        load_ground_truth(path)
    except ValueError:
        pass


@FUZZ
@given(st.one_of(json_values, st.fixed_dictionaries({"annotations": st.lists(
    st.fixed_dictionaries({}, optional={"file_name": scalars, "segments_info": json_values, "image_id": scalars}),
    max_size=3)})))
def test_panoptic_reader_never_crashes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "p.json"
    path.write_text(json.dumps(data))
    try:
        load_panoptic_json(path)
    except ValueError:
        pass


@pytest.mark.parametrize("text", ["", "{", "[1, 2", "\x00\x01", "NaN]", '{"images": 3}'])
def test_corrupt_json_files_are_value_errors(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_bytes(text.encode("latin-1"))
    for reader in (load_results, load_image_info, load_ground_truth, load_panoptic_json):
        with pytest.raises(ValueError, match="x.json"):
            reader(path)
