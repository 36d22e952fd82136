"""The pretrained models that ship inside the package."""

import pytest

from napari_srcnn.engine.evaluation import evaluate_files, summarize
from napari_srcnn.engine.inference import UpscaleOptions, Upscaler
from napari_srcnn.engine.weights import default_model_name, list_models, load_model

EXPECTED = {"srcnn-955-y-x2", "srcnn-955-y-x3", "srcnn-955-y-x4", "srcnn-915-y-x3"}


def test_shipped_models_carry_their_metadata():
    models = {m.name: m for m in list_models() if m.path and "napari_srcnn" in str(m.path)}
    assert set(models) >= EXPECTED
    for m in models.values():
        assert m.arch.name in ("9-5-5", "9-1-5")
        assert m.training["recipe"] in ("adam", "paper")
        assert m.training["steps"] > 0 and m.training["wall_seconds"] > 0
        assert "SunHays80" in m.training["data"] or "Sun" in m.description
        for name in ("Set5", "Set14"):
            assert m.metrics[name]["psnr"] > m.metrics[name]["bicubic_psnr"]
    assert default_model_name(3.0) == "srcnn-955-y-x3"
    assert default_model_name(2.0) == "srcnn-955-y-x2"
    assert default_model_name(4.0) == "srcnn-955-y-x4"


@pytest.fixture(scope="module")
def set5_x3(datasets):
    """Mean Set5 ×3 scores of the shipped default model, by the protocol."""
    model = load_model("srcnn-955-y-x3")
    upscaler = Upscaler(
        model, UpscaleOptions(scale=3.0, channels="per-channel", normalization="none")
    )
    return model, summarize(evaluate_files([datasets / "eval" / "Set5"], 3, upscaler))


def test_x3_model_beats_bicubic_on_set5_and_matches_its_metadata(set5_x3):
    model, mean = set5_x3
    # Regression guard below the bar (measured: +1.87 dB, 32.26 vs 30.39).
    assert mean["psnr"] - mean["bicubic_psnr"] >= 1.5, mean
    assert mean["psnr"] == pytest.approx(model.info.metrics["Set5"]["psnr"], abs=0.01)
    assert mean["ssim"] == pytest.approx(model.info.metrics["Set5"]["ssim"], abs=1e-4)


@pytest.mark.xfail(
    strict=True,
    reason="issue 4's bar is not met yet: the CPU-trained ×3 model gains +1.87 dB over "
    "bicubic on Set5 (32.26 vs 30.39); it needs +2.00. Remove this marker when it passes.",
)
def test_x3_model_beats_bicubic_by_2db_on_set5(set5_x3):
    _, mean = set5_x3
    assert mean["psnr"] - mean["bicubic_psnr"] >= 2.0, mean
