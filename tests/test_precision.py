"""What ``precision="auto"`` becomes, from the device, the CPU's flags and the model's bf16 check."""

import numpy as np
import pytest
import torch

from napari_srcnn.engine import device as dev
from napari_srcnn.engine.evaluation import check_bf16
from napari_srcnn.engine.inference import Upscaler, upscale
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.precision import BF16_MAX_LOSS_DB, bf16_check, choose_precision
from napari_srcnn.engine.weights_file import LoadedModel
from napari_srcnn.errors import InputError

AVX2 = "fpu sse sse2 avx avx2 fma"
AMX = "fpu sse sse2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16"
CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")
PASSED = {"bf16": {"set5_psnr_delta": -0.02, "ok": True}}
FAILED = {"bf16": {"set5_psnr_delta": -0.2, "ok": False}}


@pytest.fixture
def flags(monkeypatch):
    """Fake the CPU's flags (``cpu_flags`` is cached: cleared before and after)."""

    def fake(text: str) -> None:
        monkeypatch.setenv("NAPARI_SRCNN_CPU_FLAGS", text)
        dev.cpu_flags.cache_clear()

    dev.cpu_flags.cache_clear()
    yield fake
    monkeypatch.delenv("NAPARI_SRCNN_CPU_FLAGS", raising=False)
    dev.cpu_flags.cache_clear()


def _model(metrics: dict, arch: str = "9-5-5") -> LoadedModel:
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse(arch)).eval()
    return LoadedModel(net, ModelInfo(name="r", arch=net.spec, scale=2.0, metrics=metrics))


@pytest.mark.parametrize(
    ("cpu", "metrics", "expected"),
    [
        (AMX, PASSED, "bf16"),
        (AMX, FAILED, "fp32"),
        (AMX, {}, "fp32"),  # no check in the file: fp32
        (AVX2, PASSED, "fp32"),  # emulated bf16 (~100x slower) is never chosen
        (AVX2, {}, "fp32"),
        ("", PASSED, "fp32"),  # flags unreadable
    ],
)
def test_auto_on_the_cpu_needs_native_bf16_and_a_passed_check(flags, cpu, metrics, expected):
    flags(cpu)
    precision, reason = choose_precision("auto", CPU, metrics)
    assert precision == expected and reason.startswith(expected)


def test_auto_elsewhere_and_explicit_requests(flags):
    flags(AVX2)
    assert choose_precision("auto", CUDA, {})[0] == "bf16"
    assert choose_precision("auto", CUDA, PASSED)[0] == "bf16"
    assert choose_precision("auto", CUDA, FAILED)[0] == "fp32"
    assert choose_precision("auto", MPS, PASSED)[0] == "fp32"
    assert choose_precision("fp32", MPS)[0] == "fp32"
    for precision in ("fp32", "bf16", "fp16"):  # asked for: honoured, with a note where slow
        assert choose_precision(precision, CPU, FAILED)[0] == precision
    assert "much slower" in choose_precision("bf16", CPU)[1]
    flags(AMX)
    assert "much slower" not in choose_precision("bf16", CPU)[1]
    with pytest.raises(InputError, match="MPS"):
        choose_precision("bf16", MPS)
    with pytest.raises(InputError, match="not one of"):
        choose_precision("tf32", CPU)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (None, None),
        ({}, None),
        ({"bf16": "yes"}, None),
        ({"bf16": {"ok": "true"}}, None),
        ({"bf16": {"ok": False}}, False),
        (PASSED, True),
    ],
)
def test_a_malformed_check_counts_as_none(metrics, expected):
    assert bf16_check(metrics) is expected


def test_auto_on_an_avx2_cpu_is_exactly_fp32(flags, camera):
    """Done-when of issue 17: on an AVX2-only CPU, auto equals fp32 (faked flags)."""
    flags(AVX2)
    model = _model(PASSED)
    image = camera[:48, :40]
    up = Upscaler(model, UpscaleOptions(scale=2))
    assert up.runner.precision == "fp32"
    np.testing.assert_array_equal(up(image), upscale(image, model, 2, precision="fp32"))


def test_auto_on_a_native_bf16_cpu_runs_bf16_for_a_checked_model(flags, camera):
    flags(AMX)
    image = camera[:48, :40]
    checked = _model(PASSED)
    up = Upscaler(checked, UpscaleOptions(scale=2))
    assert up.runner.precision == "bf16" and "check passed" in up.runner.precision_reason
    np.testing.assert_array_equal(up(image), upscale(image, checked, 2, precision="bf16"))
    unchecked = Upscaler(_model({}), UpscaleOptions(scale=2))
    assert unchecked.runner.precision == "fp32"


def test_check_bf16_measures_the_protocol_in_both_precisions(tiny_model_path, datasets):
    entry = check_bf16(tiny_model_path, datasets / "eval" / "Set5")
    assert entry["set"] == "Set5" and entry["scale"] == 2
    assert entry["set5_psnr_delta"] == pytest.approx(
        entry["bf16_psnr"] - entry["fp32_psnr"], abs=2e-4
    )
    assert abs(entry["set5_psnr_delta"]) < 0.5 and entry["max_loss_db"] == BF16_MAX_LOSS_DB
    assert entry["ok"] is (entry["set5_psnr_delta"] >= -BF16_MAX_LOSS_DB)
    assert isinstance(entry["native_bf16"], bool) and entry["torch"] == torch.__version__


def test_check_precision_script_records_the_check_that_auto_reads(
    tiny_model_path, datasets, tmp_path, flags
):
    """scripts/check_precision.py writes metrics["bf16"] into a weights file (weights and
    the other metrics unchanged); auto then follows it on a native-bf16 CPU."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from napari_srcnn.engine.weights import load_model
    from napari_srcnn.engine.weights_file import read_info

    path = tmp_path / "tiny-x2.safetensors"
    shutil.copy(tiny_model_path, path)
    before = load_model(path)
    script = Path(__file__).resolve().parents[1] / "scripts" / "check_precision.py"
    images = datasets / "eval" / "Set5"
    done = subprocess.run(
        [sys.executable, str(script), str(path), "--images", str(images)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "-> auto runs" in done.stdout
    info = read_info(path)
    entry = info.metrics["bf16"]
    assert set(before.info.metrics) | {"bf16"} == set(info.metrics)
    assert entry["set"] == "Set5" and isinstance(entry["ok"], bool)
    after = load_model(path)
    for key, value in before.net.state_dict().items():
        assert torch.equal(after.net.state_dict()[key], value)
    flags(AMX)
    up = Upscaler(after, UpscaleOptions(scale=2))
    assert up.runner.precision == ("bf16" if entry["ok"] else "fp32")
