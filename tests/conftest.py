"""Shared fixtures: small real images, a tiny trained model, the benchmark datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def datasets_root() -> Path:
    """``../shared/datasets`` next to the checkout (or $NAPARI_SRCNN_DATASETS)."""
    env = os.environ.get("NAPARI_SRCNN_DATASETS")
    return Path(env) if env else ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _restore_model_registry():
    """Models registered by a test (training runs, dropped weights files) do not leak."""
    from napari_srcnn.engine import weights

    before = dict(weights._REGISTERED)
    yield
    weights._REGISTERED.clear()
    weights._REGISTERED.update(before)


@pytest.fixture(scope="session")
def datasets() -> Path:
    root = datasets_root()
    if not (root / "eval").is_dir():
        pytest.skip(f"benchmark datasets not found at {root}")
    return root


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """A real 8-bit grayscale photo (scikit-image's cameraman), 128×128 crop."""
    from skimage import data

    return data.camera()[100:228, 200:328].copy()


@pytest.fixture(scope="session")
def stack16(camera) -> np.ndarray:
    """A real 16-bit z-stack: four 64×64 crops of the cameraman, 12-bit range."""
    tiles = [camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)]
    return np.stack(tiles).astype(np.uint16) * 16


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real 8-bit RGB photo, 96×80 crop."""
    from skimage import data

    return data.astronaut()[40:136, 180:260].copy()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, camera) -> Path:
    """A tiny 1-channel SRCNN (3-1-3, 8/4 filters) trained briefly at ×2 on real images."""
    from skimage import data

    from napari_srcnn.engine.data import training_data_from_arrays
    from napari_srcnn.engine.model import ArchSpec
    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.engine.training import train

    images = [data.camera(), data.coins(), data.moon()]
    tdata = training_data_from_arrays(images, 2.0, "y", patch_size=24, val_fraction=0.34, seed=0)
    out = tmp_path_factory.mktemp("tiny") / "tiny-x2.safetensors"
    config = TrainConfig(
        output=out,
        scale=2.0,
        arch=ArchSpec.parse("3-1-3:8,4"),
        steps=150,
        batch_size=16,
        patch_size=24,
        lr=3e-3,
        val_every=150,
        device="cpu",
    )
    train(tdata, config)
    return out
