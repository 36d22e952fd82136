"""Tests of the evaluation protocol: PSNR, SSIM, modcrop, shave, ``evaluate_pair``."""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from napari_srcnn.engine.metrics import evaluate_pair, modcrop, psnr, shave, ssim

# ----------------------------------------------------------------------------- helpers


def test_modcrop() -> None:
    img = np.zeros((2, 13, 17))
    assert modcrop(img, 4).shape == (2, 12, 16)
    assert modcrop(img, 3.0).shape == (2, 12, 15)
    assert modcrop(img, 1).shape == (2, 13, 17)
    x = np.arange(35).reshape(5, 7)
    np.testing.assert_array_equal(modcrop(x, 2), x[:4, :6])  # keeps the top-left corner
    for bad in (2.5, 0, -2, "x"):
        with pytest.raises(ValueError, match="integer"):
            modcrop(img, bad)  # type: ignore[arg-type]


def test_shave() -> None:
    x = np.arange(100).reshape(10, 10)
    np.testing.assert_array_equal(shave(x, 3), x[3:7, 3:7])
    assert shave(x, 0) is x
    with pytest.raises(ValueError, match="leaves nothing"):
        shave(x, 5)
    with pytest.raises(ValueError):
        shave(x, -1)


# -------------------------------------------------------------------------------- PSNR


def test_psnr_identical_is_inf() -> None:
    x = np.random.default_rng(0).integers(0, 256, (20, 20)).astype(np.uint8)
    assert psnr(x, x) == math.inf


def test_psnr_known_mse() -> None:
    a = np.zeros((8, 8))
    # MSE 25 -> 10 log10(255^2 / 25) = 20 log10(51).
    assert psnr(a, a + 5) == pytest.approx(20 * math.log10(51), abs=1e-12)
    # Data range 1: MSE 0.01 -> 20 dB.
    assert psnr(a, a + 0.1, data_range=1.0) == pytest.approx(20.0, abs=1e-12)


def test_psnr_uses_float64_and_the_shave() -> None:
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[0, :] = 255  # only the border differs; uint8 subtraction would wrap around
    assert psnr(a, b) == pytest.approx(10 * math.log10(10.0))
    assert psnr(a, b, shave=1) == math.inf


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


# -------------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one() -> None:
    x = np.random.default_rng(1).random((32, 40)) * 255
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_skimage_gaussian() -> None:
    # skimage pads and filters the full image but averages only the region at least
    # (11 - 1) / 2 pixels from the border, which is exactly MATLAB's 'valid' SSIM map; its
    # Gaussian (sigma 1.5, truncate 3.5) is the same 11x11 window.
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (48, 57)).astype(np.float64)
    for noisy in (hr + rng.normal(0, 10, hr.shape), hr * 0.7 + 20, np.roll(hr, 1, axis=1)):
        ours = ssim(noisy, hr)
        ref = structural_similarity(
            noisy,
            hr,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert ours == pytest.approx(ref, abs=1e-3)
        assert ours == pytest.approx(ref, abs=1e-9)  # in fact the same numbers
    # With a shave: the same as scoring the cropped images.
    noisy = hr + rng.normal(0, 5, hr.shape)
    assert ssim(noisy, hr, shave=4) == pytest.approx(ssim(noisy[4:-4, 4:-4], hr[4:-4, 4:-4]))


def test_ssim_data_range() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((20, 20))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    assert ssim(a, b, data_range=1.0) == pytest.approx(ssim(a * 255, b * 255), abs=1e-12)


def test_ssim_input_errors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        ssim(np.zeros((3, 20, 20)), np.zeros((3, 20, 20)))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(np.zeros((10, 20)), np.zeros((10, 20)))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(np.zeros((20, 20)), np.zeros((20, 20)), shave=5)


# ------------------------------------------------------------------------ evaluate_pair


def _smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    rgb = np.stack([base, 255 - base, base * 0.5 + 40], -1) + rng.normal(0, 3, (h, w, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def test_evaluate_pair_constant_image_is_perfect() -> None:
    scores = evaluate_pair(np.full((40, 41), 100, np.uint8), 3)
    assert scores == {"bicubic_psnr": math.inf, "bicubic_ssim": pytest.approx(1.0)}


def test_evaluate_pair_passes_the_lr_y_to_upscale_fn() -> None:
    from napari_srcnn.engine.resize import imresize

    hr = _smooth_rgb(50, 62)
    seen: list[np.ndarray] = []

    def bicubic(y: np.ndarray) -> np.ndarray:
        seen.append(y)
        return imresize(y.astype(np.float64), 4.0)

    scores = evaluate_pair(hr, 4, upscale_fn=bicubic)
    (y,) = seen
    assert y.dtype == np.float32 and y.shape == (12, 15)  # LR of the mod-cropped HR
    assert y.min() > 0.0 and y.max() < 1.0
    # Up-sampling the LR bicubically scores exactly like bicubic.
    assert scores["psnr"] == pytest.approx(scores["bicubic_psnr"], abs=1e-6)
    assert scores["ssim"] == pytest.approx(scores["bicubic_ssim"], abs=1e-6)
    assert 20 < scores["bicubic_psnr"] < 60


@pytest.mark.parametrize("gray", [False, True])
def test_evaluate_pair_rgb_method_gets_the_rgb_lr_and_is_scored_on_y(gray: bool) -> None:
    """An RGB method (the paper's colour experiment) is handed the down-sampled RGB; per
    channel bicubic scores like the Y baseline up to the 8-bit rounding of R, G and B."""
    from napari_srcnn.engine.resize import imresize

    hr = _smooth_rgb(60, 75, seed=3)
    hr = hr[..., 1] if gray else hr
    seen: list[np.ndarray] = []

    def bicubic_rgb(rgb: np.ndarray) -> np.ndarray:
        seen.append(rgb)
        return np.stack([imresize(rgb[..., c].astype(np.float64), 3.0) for c in range(3)], -1)

    scores = evaluate_pair(hr, 3, upscale_fn=bicubic_rgb, rgb=True)
    (lr,) = seen
    assert lr.shape == (20, 25, 3) and lr.dtype == np.float32
    if gray:  # three equal channels, scored on their mean: exactly the Y baseline
        assert scores["psnr"] == pytest.approx(scores["bicubic_psnr"], abs=1e-9)
    else:
        assert not np.allclose(lr[..., 0], lr[..., 1])
        assert scores["psnr"] == pytest.approx(scores["bicubic_psnr"], abs=0.1)
    # A method that returns the HR RGB itself is perfect on Y.
    hr_rgb = np.repeat(hr[..., None], 3, -1) if gray else hr
    oracle = evaluate_pair(hr, 3, upscale_fn=lambda _: hr_rgb / 255.0, rgb=True)
    assert oracle["psnr"] == math.inf


def test_evaluate_pair_scores_against_hr_not_bicubic() -> None:
    from napari_srcnn.engine.color import rgb_to_y_uint8

    hr = _smooth_rgb(48, 48, seed=1)
    y_hr = rgb_to_y_uint8(hr).astype(np.float64)
    oracle = evaluate_pair(hr, 2, upscale_fn=lambda _: y_hr / 255.0)
    assert oracle["psnr"] == math.inf and oracle["ssim"] == pytest.approx(1.0)
    # Output outside [0, 1] is clipped before scoring.
    clipped = evaluate_pair(hr, 2, upscale_fn=lambda _: np.full(y_hr.shape, 2.0))
    assert clipped["psnr"] == pytest.approx(psnr(np.full_like(y_hr, 255.0), y_hr, shave=2))


def test_evaluate_pair_quantize_flag() -> None:
    hr = _smooth_rgb(60, 60, seed=2)
    q = evaluate_pair(hr, 3)
    f = evaluate_pair(hr, 3, quantize=False)
    assert q["bicubic_psnr"] != f["bicubic_psnr"]
    assert abs(q["bicubic_psnr"] - f["bicubic_psnr"]) < 0.5  # rounding noise only


def test_evaluate_pair_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        evaluate_pair(np.zeros((40, 40), np.float32), 2)
    with pytest.raises(ValueError, match="RGB"):
        evaluate_pair(np.zeros((40, 40, 4), np.uint8), 2)
    with pytest.raises(ValueError, match="integer"):
        evaluate_pair(np.zeros((40, 40), np.uint8), 2.5)
    with pytest.raises(ValueError, match="too small"):
        evaluate_pair(np.zeros((14, 40), np.uint8), 2)  # 14 - 2*2 < 11
    with pytest.raises(ValueError, match="shape"):
        evaluate_pair(np.zeros((40, 40), np.uint8), 2, upscale_fn=lambda y: y)


# ------------------------------------------------------------- published bicubic table


def _datasets_dir() -> Path | None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    if (default / "eval").is_dir():
        return default
    env = os.environ.get("NAPARI_SRCNN_DATASETS")
    if env and (Path(env) / "eval").is_dir():
        return Path(env)
    return None


# shared/datasets/README.md: bicubic Y-PSNR / SSIM (Dong et al., TPAMI 2016).
BICUBIC_TABLE = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
}


@cache
def _load_set(name: str) -> tuple[np.ndarray, ...]:
    from skimage.io import imread

    root = _datasets_dir()
    assert root is not None
    files = sorted((root / "eval" / name).glob("*.png"))
    assert files, f"no PNG images in {root / 'eval' / name}"
    return tuple(imread(f) for f in files)


@pytest.mark.skipif(
    _datasets_dir() is None,
    reason="benchmark images not found: expected ../shared/datasets/eval next to the repo "
    "or NAPARI_SRCNN_DATASETS=<folder holding eval/>",
)
@pytest.mark.parametrize(("name", "scale"), sorted(BICUBIC_TABLE))
def test_bicubic_reference_numbers(name: str, scale: int) -> None:
    scores = [evaluate_pair(img, scale) for img in _load_set(name)]
    mean_psnr = float(np.mean([s["bicubic_psnr"] for s in scores]))
    mean_ssim = float(np.mean([s["bicubic_ssim"] for s in scores]))
    ref_psnr, ref_ssim = BICUBIC_TABLE[(name, scale)]
    print(
        f"\n{name} x{scale}: bicubic {mean_psnr:.2f} dB / {mean_ssim:.4f} "
        f"(paper {ref_psnr:.2f} / {ref_ssim:.4f}, {len(scores)} images)"
    )
    assert mean_psnr == pytest.approx(ref_psnr, abs=0.05)
    assert mean_ssim == pytest.approx(ref_ssim, abs=0.003)
