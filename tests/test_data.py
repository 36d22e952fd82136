"""The training set: from arrays and files, LR/HR pairs, split, bad data, grid size, cancel."""

import numpy as np
import pytest
import tifffile

from napari_srcnn.engine.color import normalization_auto
from napari_srcnn.engine.data import (
    find_images,
    training_data_from_arrays,
    training_data_from_paths,
)
from napari_srcnn.engine.io import write_image
from napari_srcnn.engine.resize import imresize
from napari_srcnn.errors import InputError, TrainingDataError

# ------------------------------------------------------------------ files and folders


def test_tiff_stacks_and_image_folders(tmp_path, camera, astronaut, stack16):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    write_image(folder / "a.png", camera)  # 8-bit gray
    write_image(folder / "b.png", (camera.astype(np.uint16) * 257))  # 16-bit PNG
    write_image(folder / "sub" / "c.jpg", camera)
    import imageio.v3 as iio

    iio.imwrite(folder / "d.bmp", camera)
    (folder / "notes.txt").write_text("not an image")
    data = training_data_from_paths([folder], 2, "per-channel", patch_size=33, val_fraction=0.25)
    assert len(data.train) == 3 and len(data.val) == 1 and data.color_mode == "per-channel"
    # An ImageJ hyperstack and an OME-TIFF: every 2-D plane is an image.
    tifffile.imwrite(
        tmp_path / "h.tif",
        np.stack([stack16, stack16], axis=1)[None],
        imagej=True,
        metadata={"axes": "TZCYX"},
    )
    tifffile.imwrite(tmp_path / "o.ome.tif", stack16[:3], ome=True, metadata={"axes": "ZYX"})
    data = training_data_from_paths(
        [tmp_path / "h.tif", tmp_path / "o.ome.tif"], 2, "auto", val_fraction=0.1
    )
    assert len(data.train) + len(data.val) == 8 + 3 and len(data.val) == 1
    assert data.color_mode == "per-channel" and "2 file(s)" in data.description
    # RGB files default to y.
    write_image(tmp_path / "rgb.png", astronaut)
    assert (
        training_data_from_paths([tmp_path / "rgb.png"], 2, "auto", val_fraction=0).color_mode
        == "y"
    )


# ------------------------------------------------------------------ pairs


def test_blur_reaches_the_pairs(camera):
    plain = training_data_from_arrays([camera], 2, val_fraction=0)
    blurred = training_data_from_arrays([camera], 2, val_fraction=0, blur_sigma=1.0)
    assert blurred.blur_sigma == 1.0
    np.testing.assert_array_equal(plain.train[0].hr, blurred.train[0].hr)
    assert not np.allclose(plain.train[0].lr_up, blurred.train[0].lr_up)


def test_explicit_pairs(camera, stack16):
    hr = stack16
    lr = np.stack([imresize(p.astype(np.float64), 0.5) for p in hr]).round().astype(np.uint16)
    data = training_data_from_arrays([hr], 2, lr_arrays=[lr], val_fraction=0.25)
    pair = (data.train + data.val)[0]
    assert pair.lr_up.shape == pair.hr.shape == (1, 64, 64)
    same = training_data_from_arrays([hr], 2, lr_arrays=[hr], val_fraction=0)
    np.testing.assert_array_equal(same.train[0].lr_up, same.train[0].hr)
    # HR not a multiple of the factor: LR is ceil or floor of H / s.
    odd = hr[:, :63, :63]
    lr_odd = np.stack([imresize(p.astype(np.float64), 0.5) for p in odd]).astype(np.float32) / 65535
    assert training_data_from_arrays([odd], 2, lr_arrays=[lr_odd], val_fraction=0).train[
        0
    ].lr_up.shape == (1, 63, 63)


# ------------------------------------------------------------------ split


def test_split_by_plane_is_disjoint_and_seeded(stack16):
    stack = np.concatenate([stack16] * 5)  # 20 planes
    for i in range(len(stack)):
        stack[i, 0, 0] = i  # tag every plane
    a = training_data_from_arrays([stack], 2, val_fraction=0.2, seed=3)
    norm = normalization_auto(stack)
    tags = lambda planes: {  # noqa: E731
        round(float(p.hr[0, 0, 0]) * (norm.high - norm.low) + norm.low) for p in planes
    }
    assert len(a.val) == 4 and len(a.train) == 16
    assert tags(a.train).isdisjoint(tags(a.val)) and tags(a.train) | tags(a.val) == set(range(20))
    b = training_data_from_arrays([stack], 2, val_fraction=0.2, seed=3)
    assert tags(b.val) == tags(a.val)
    c = training_data_from_arrays([stack], 2, val_fraction=0.2, seed=4)
    assert tags(c.val) != tags(a.val)


# ------------------------------------------------------------------ bad data


@pytest.mark.parametrize(
    ("arrays", "kwargs", "message"),
    [
        ([np.zeros((0, 64, 64), np.uint16)], {}, "is empty"),
        ([np.zeros((5,), np.uint8)], {}, "no 2-D planes"),
        ([np.full((2, 64, 64), np.nan, np.float32)], {}, "NaN or Inf"),
        ([np.where(np.eye(64) > 0, np.inf, 0.5)], {}, "NaN or Inf"),
        ([np.zeros((64, 64), bool)], {}, "dtype bool"),
        ([np.zeros((3, 20, 64), np.uint8)], {}, "smaller than a 33×33 sub-image"),
        ([np.zeros((64, 64), np.uint8)], {"val_fraction": 0.5}, "too small to hold out"),
        ([np.zeros((4, 64, 64), np.uint8)], {"val_fraction": 1.5}, "validation fraction"),
        (
            [np.zeros((2, 64, 64), np.uint8)],
            {"lr_arrays": [np.zeros((2, 20, 32), np.uint8)]},
            "does not match",
        ),
        (
            [np.zeros((2, 64, 64), np.uint8)],
            {"lr_arrays": [np.zeros((3, 32, 32), np.uint8)]},
            "different numbers of planes",
        ),
        ([np.zeros((64, 64), np.uint8)], {"color_mode": "rgb"}, "RGB model needs RGB"),
        ([np.zeros((64, 64), np.uint8)], {"color_mode": "lab"}, "colour mode"),
        ([], {}, "no training images"),
    ],
)
def test_bad_data_is_a_one_line_error(arrays, kwargs, message):
    kwargs = {"val_fraction": 0.0, **kwargs}
    with pytest.raises(TrainingDataError, match=message) as info:
        training_data_from_arrays(arrays, 2, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(TrainingDataError, match="does not exist"):
        find_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingDataError, match="no images"):
        training_data_from_paths([tmp_path / "empty"], 2)


def test_small_planes_are_skipped_and_reported(camera):
    data = training_data_from_arrays([camera, camera[:20, :20]], 2, val_fraction=0)
    assert len(data.train) == 1 and data.skipped == 1 and "1 plane(s) smaller" in data.description


def test_grid_size_counts_the_stride_14_grid(camera):
    data = training_data_from_arrays([camera[:61, :75]], 2, val_fraction=0)
    # 60×74 after mod-crop: rows 0, 14 (2 positions), cols 0, 14, 28 (3 positions).
    assert data.grid_size(33) == 2 * 3


def test_cancel_stops_making_the_pairs(stack16):
    """``cancel`` is polled before each plane is degraded (the slow part for big stacks)."""
    from napari_srcnn.errors import CancelledError

    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(CancelledError, match="cancelled"):
        training_data_from_arrays([stack16], 2, "per-channel", patch_size=16, cancel=cancel)
    assert len(polls) == 3
    data = training_data_from_arrays(
        [stack16], 2, "per-channel", patch_size=16, cancel=lambda: False
    )
    assert len(data.train) + len(data.val) == stack16.shape[0]


# ------------------------------------------------------------------ validation and degradations


def test_a_single_plane_holds_out_a_region_for_validation(camera):
    """One image can be fine-tuned with validation: a strip of it validates, the rest trains."""
    plane = camera[:120, :128].astype(np.uint16) + 98  # one dim 16-bit plane
    data = training_data_from_arrays([plane], 2, val_fraction=0.1, seed=0)
    assert len(data.train) == 1 and len(data.val) == 1
    (train,), (val,) = data.train, data.val
    assert train.hr.shape[-2] == val.hr.shape[-2] == 120  # cut along the longer axis (X)
    assert train.hr.shape[-1] + val.hr.shape[-1] == 128 and val.hr.shape[-1] >= 48
    norm = normalization_auto(plane)
    restored = np.concatenate([train.hr[0], val.hr[0]], axis=-1) * (norm.high - norm.low)
    np.testing.assert_allclose(restored + norm.low, plane, atol=1e-3)  # disjoint, complete
    assert "validation: a 120×48 region" in data.description


def test_explicit_validation_images_replace_the_fraction(camera):
    train = [camera[:64, :64], camera[64:, :64]]
    held_out = [camera[:64, 64:]]
    data = training_data_from_arrays(train, 2, val_arrays=held_out, val_fraction=0.5)
    assert len(data.train) == 2 and len(data.val) == 1
    norm = normalization_auto(held_out[0])  # mapped by its own range, like any image
    np.testing.assert_allclose(
        data.val[0].hr[0], (held_out[0] - norm.low) / (norm.high - norm.low), atol=1e-6
    )


def test_mixed_degradation_pairs_every_plane_five_ways(camera):
    from napari_srcnn.engine.degradation import DIM_LEVELS

    planes = [camera[:60, :60], camera[60:120, :60]]
    mixed = training_data_from_arrays(planes, 3, degradation="mixed", val_fraction=0.5)
    # bicubic, area, blurred, oversampled, dim
    assert len(mixed.train) == 5 and len(mixed.val) == 5
    hr = mixed.train[0].hr
    assert all(p.hr is hr for p in mixed.train[:3])  # one HR array, shared
    assert mixed.train[3].hr.std() < hr.std()  # oversampled: the HR plane itself is smooth
    lrs = [p.lr_up for p in mixed.train]
    assert not np.allclose(lrs[0], lrs[1]) and not np.allclose(lrs[0], lrs[2])
    # Dim: the first plane recorded on DIM_LEVELS[0] levels, HR and (before enlarging) LR.
    dim = mixed.train[4].hr * DIM_LEVELS[0]
    np.testing.assert_allclose(dim, np.rint(dim), atol=1e-4)
    assert 0.5 * DIM_LEVELS[0] < np.unique(np.rint(dim)).size <= DIM_LEVELS[0] + 4
    with pytest.raises(TrainingDataError, match="integer factor"):
        training_data_from_arrays(planes, 2.5, degradation="area", val_fraction=0.5)
    with pytest.raises(TrainingDataError, match="not one of"):
        training_data_from_arrays(planes, 2, degradation="jpeg", val_fraction=0.5)


def test_made_lr_keeps_the_stored_levels_of_scientific_data(camera, astronaut):
    """Per-channel data (microscopy) gets LR partners rounded onto its own integer levels, as a
    camera stores them; photo models keep the paper's unrounded LR."""
    from napari_srcnn.engine.checkpoints import run_fingerprint
    from napari_srcnn.engine.degradation import level_grid
    from napari_srcnn.engine.model import ArchSpec
    from napari_srcnn.engine.train_config import TrainConfig

    dim = (98 + (camera.astype(np.uint16) * 77) // 255)[:120, :120]  # a 77-level uint16 plane
    stored = training_data_from_arrays([dim, dim[::-1]], 2, val_fraction=0.5, degradation="mixed")
    unrounded = training_data_from_arrays(
        [dim, dim[::-1]], 2, val_fraction=0.5, degradation="mixed", lr_levels="float"
    )
    assert stored.lr_levels == "stored" and unrounded.lr_levels == "float"
    origin, step = level_grid(stored.train[0].hr)
    pairs = zip(stored.train + stored.val, unrounded.train + unrounded.val, strict=True)
    for i, (a, b) in enumerate(pairs):
        gap = np.abs(a.lr_up - b.lr_up).max()
        if i % 5 == 4:  # the dim partner is a recording on a few levels either way
            assert gap == 0
        else:
            assert 0.1 * step < gap < step  # rounded by up to half a level, then enlarged
        np.testing.assert_array_equal(a.hr, b.hr)
    # Y of RGB photographs: as before, not rounded.
    photo = training_data_from_arrays([astronaut], 2, "y", val_fraction=0.0)
    assert photo.lr_levels == "float"
    # A resumed run must make its pairs the same way.
    config = TrainConfig(output="m.safetensors", scale=2.0)
    assert run_fingerprint(config, ArchSpec(), stored)["data"]["lr_levels"] == "stored"
    assert "lr_levels" not in run_fingerprint(config, ArchSpec(), unrounded)["data"]
    with pytest.raises(TrainingDataError, match="LR levels"):
        training_data_from_arrays([dim], 2, val_fraction=0.0, lr_levels="8bit")


def test_api_checks_blur_and_memory_before_any_work(camera, monkeypatch):
    """The API refuses what the CLI refuses: an absurd blur, and data that would not fit in
    memory (estimated from shapes, before anything is allocated)."""
    with pytest.raises(TrainingDataError, match="from 0 to 32"):
        training_data_from_arrays([camera], 2, blur_sigma=1e9)
    monkeypatch.setenv("NAPARI_SRCNN_MEMORY_LIMIT", "10MB")
    with pytest.raises(InputError, match="building the training data needs about"):
        training_data_from_arrays([np.zeros((2000, 2000), np.uint16)], 2)
