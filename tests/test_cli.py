"""The ``napari-srcnn`` command, run through its real entry point in a subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_srcnn.engine.io import ImageMeta, read_image, write_image


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "napari_srcnn", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_version_and_help():
    from napari_srcnn import __version__

    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"napari-srcnn {__version__}"
    for command in ("upscale", "eval", "train", "models"):
        r = cli(command, "--help")
        assert r.returncode == 0 and "usage: napari-srcnn " + command in r.stdout


def test_upscale_tiff_keeps_axes_and_shrinks_pixel_size(tmp_path, tiny_model_path):
    stack = np.random.default_rng(0).integers(0, 4000, (2, 3, 20, 24), dtype=np.uint16)
    src = write_image(
        tmp_path / "in.tif", stack, ImageMeta(axes="ZCYX", spacing=(2.0, None, 0.5, 0.5), unit="µm")
    )
    before = src.read_bytes()
    r = cli(
        "upscale",
        src,
        "-o",
        tmp_path / "out.tif",
        "--weights",
        tiny_model_path,
        "--scale",
        2,
        "--tile",
        16,
    )
    assert r.returncode == 0, r.stderr
    out, meta = read_image(tmp_path / "out.tif")
    assert out.shape == (2, 3, 40, 48) and out.dtype == np.uint16
    assert meta.axes == "ZCYX"
    assert meta.spacing[2] == pytest.approx(0.25) and meta.spacing[0] == pytest.approx(2.0)
    assert src.read_bytes() == before  # the input is never modified


def test_upscale_stack_three_pixels_wide_keeps_its_axes(tmp_path, tiny_model_path, camera):
    """A z-stack whose X axis is 3 long is not taken for one RGB image: the file's axes say
    which axis is colour."""
    stack = camera[:60, :3].reshape(4, 15, 3).astype(np.uint16) * 257
    src = write_image(tmp_path / "narrow.tif", stack, ImageMeta(axes="ZYX"))
    r = cli("upscale", src, "-o", tmp_path / "out.tif", "--weights", tiny_model_path, "--scale", 2)
    assert r.returncode == 0, r.stderr
    out, meta = read_image(tmp_path / "out.tif")
    assert out.shape == (4, 30, 6) and meta.axes == "ZYX"


def test_upscale_png_with_reference_prints_psnr(tmp_path, tiny_model_path, astronaut):
    hr = astronaut[:96, :80]
    from napari_srcnn.engine.resize import imresize

    lr = np.moveaxis(imresize(np.moveaxis(hr, -1, 0).astype(np.float64), 0.5), 0, -1)
    lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    write_image(tmp_path / "lr.png", lr)
    write_image(tmp_path / "hr.png", hr)
    r = cli(
        "upscale",
        tmp_path / "lr.png",
        "-o",
        tmp_path,
        "--weights",
        tiny_model_path,
        "--reference",
        tmp_path / "hr.png",
    )
    assert r.returncode == 0, r.stderr
    out, _ = read_image(tmp_path / "lr_x2.png")
    assert out.shape == hr.shape
    line = [s for s in r.stdout.splitlines() if s.startswith("PSNR vs hr.png")]
    assert line and "bicubic" in line[0] and "SRCNN" in line[0]


def test_several_inputs_need_a_folder(tmp_path, tiny_model_path, camera):
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name, camera[:20, :20])
    r = cli(
        "upscale",
        tmp_path / "a.png",
        tmp_path / "b.png",
        "-o",
        tmp_path / "x.png",
        "--weights",
        tiny_model_path,
    )
    assert r.returncode == 2 and "need an output folder" in r.stderr
    (tmp_path / "out").mkdir()
    r = cli(
        "upscale",
        tmp_path / "a.png",
        tmp_path / "b.png",
        "-o",
        tmp_path / "out",
        "--weights",
        tiny_model_path,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x2.png", "b_x2.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["upscale", "missing.tif", "-o", "o.tif", "--weights", "W"], "does not exist"),
        (["upscale", "in.png", "-o", "in.png", "--weights", "W"], "overwrite the input"),
        (["upscale", "in.png", "-o", "nofolder/o.png", "--weights", "W"], "does not exist"),
        (["upscale", "in.png", "-o", "o.png", "--scale", "-3", "--weights", "W"], "above 1"),
        (["upscale", "in.png", "-o", "o.png", "--tile", "3", "--weights", "W"], "at least 16"),
        (["upscale", "in.png", "-o", "o.png", "--device", "cuda:7", "--weights", "W"], "cuda"),
        (["upscale", "in.png", "-o", "o.png", "--weights", "bogus.safetensors"], "does not exist"),
        (["upscale", "in.png", "-o", "o.png", "--scale", "two"], "invalid float"),
        (["eval", "in.png", "--scale", "2", "--bicubic", "--json", "--model", "x"], "not allowed"),
        (["upscale", "in.png", "-o", "o.png", "--strength", "2", "--weights", "W"], "strength"),
        (["upscale", "in.png", "-o", "o.png", "--strength", "full", "--weights", "W"], "strength"),
        (["eval", "in.png", "--scale", "2", "--strength", "0.5", "--weights", "W"], "data-range"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, tiny_model_path, camera, args, message):
    write_image(tmp_path / "in.png", camera[:20, :20])
    args = [str(tiny_model_path) if a == "W" else a for a in args]
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr


def test_debug_shows_the_traceback(tmp_path):
    r = cli(
        "--debug", "upscale", tmp_path / "missing.tif", "-o", tmp_path / "o.tif", "--scale", "2"
    )
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_models_json_lists_registered_metadata():
    r = cli("models", "--json")
    assert r.returncode == 0
    models = json.loads(r.stdout)
    for m in models:
        assert {"name", "arch", "scale", "color_mode", "metrics", "training"} <= set(m)


def test_eval_json_schema_on_real_images(tmp_path, tiny_model_path):
    from skimage import data

    write_image(tmp_path / "camera.png", data.camera()[:96, :96])
    write_image(tmp_path / "astro.png", data.astronaut()[:90, :90])
    r = cli("eval", tmp_path, "--scale", 2, "--weights", tiny_model_path, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [row["name"] for row in out["images"]] == ["astro.png", "camera.png"]
    for row in out["images"]:
        assert set(row) == {"name", "bicubic_psnr", "bicubic_ssim", "psnr", "ssim"}
        assert 15 < row["psnr"] < 60 and 0 < row["ssim"] <= 1
    assert out["mean"]["bicubic_psnr"] == pytest.approx(
        np.mean([r["bicubic_psnr"] for r in out["images"]])
    )


def test_eval_scores_an_rgb_model_on_rgb_input(tmp_path):
    """An RGB (3-channel) model is evaluated on the RGB image and scored on Y: the identity
    RGB model (= bicubic per channel) scores like the Y bicubic baseline."""
    import torch
    from skimage import data

    from napari_srcnn.engine.model import SRCNN, ArchSpec, init_identity
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import save_weights

    arch = ArchSpec.parse("3-1-3:8,4", channels=3)
    torch.manual_seed(0)
    net = init_identity(SRCNN(arch))
    weights = tmp_path / "rgb-identity.safetensors"
    save_weights(weights, net, ModelInfo(name="rgb-id", arch=arch, scale=3.0, color_mode="rgb"))
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "astro.png", data.astronaut()[:150, :120])
    write_image(images / "camera.png", data.camera()[:90, :90])  # grayscale: R = G = B
    r = cli("eval", images, "--scale", 3, "--weights", weights, "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["images"]}
    assert rows["camera.png"]["psnr"] == pytest.approx(rows["camera.png"]["bicubic_psnr"], abs=1e-6)
    assert rows["astro.png"]["psnr"] == pytest.approx(rows["astro.png"]["bicubic_psnr"], abs=0.1)


# Published bicubic Y-PSNR (shared/datasets/README.md); our protocol must match within 0.05 dB.
BICUBIC = {
    ("Set5", 2): 33.66,
    ("Set5", 3): 30.39,
    ("Set5", 4): 28.42,
    ("Set14", 2): 30.24,
    ("Set14", 3): 27.55,
    ("Set14", 4): 26.00,
}


@pytest.mark.parametrize(("dataset", "scale"), sorted(BICUBIC))
def test_eval_bicubic_reproduces_the_published_table(datasets, dataset, scale):
    r = cli("eval", datasets / "eval" / dataset, "--scale", scale, "--bicubic", "--json")
    assert r.returncode == 0, r.stderr
    mean = json.loads(r.stdout)["mean"]["bicubic_psnr"]
    assert abs(mean - BICUBIC[dataset, scale]) <= 0.05, mean


def _evil_pth(folder):
    """A legacy .pth whose pickle would create PWNED if it were ever unpickled."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(folder / "PWNED"), "w"))

    path = folder / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": Payload()}, fh, protocol=2)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: [
                "upscale",
                d / "in.png",
                "-o",
                d / "o.tif",
                "--weights",
                _evil_pth(d),
                "--scale",
                2,
            ],
            "refused to load",
        ),
        (
            lambda d: [
                "upscale",
                (d / "t.tif").write_bytes(b"II*\x00" + b"\x01" * 30) and d / "t.tif",
                "-o",
                d / "o.tif",
                "--weights",
                "W",
            ],
            "cannot read",
        ),
    ],
    ids=["malicious-pickle", "corrupt-tiff"],
)
def test_hostile_inputs_through_the_real_entry_point(
    tmp_path, tiny_model_path, camera, make, message
):
    """In a real process: one stderr line, no traceback, no library log lines (tifffile
    logs its own complaint about a corrupt file; in-process tests cannot see it because
    pytest installs logging handlers), nothing executed, nothing written."""
    write_image(tmp_path / "in.png", camera[:20, :20])
    args = [str(tiny_model_path) if a == "W" else a for a in make(tmp_path)]
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "o.tif").exists()


def test_debug_shows_the_traceback_of_a_hostile_weights_file(tmp_path, camera):
    write_image(tmp_path / "in.png", camera[:20, :20])
    r = cli(
        "--debug",
        "upscale",
        tmp_path / "in.png",
        "-o",
        tmp_path / "o.tif",
        "--weights",
        _evil_pth(tmp_path),
        "--scale",
        2,
    )
    assert r.returncode != 0 and "Traceback" in r.stderr and "WeightsError" in r.stderr
    assert not (tmp_path / "PWNED").exists()


def test_scale_mismatch_is_one_warning_line_and_still_works(tmp_path, tiny_model_path, camera):
    write_image(tmp_path / "in.png", camera[:20, :20])
    r = cli(
        "upscale",
        tmp_path / "in.png",
        "-o",
        tmp_path / "o.png",
        "--weights",
        tiny_model_path,
        "--scale",
        3,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("napari-srcnn: warning: ") and "×2" in lines[0]
    assert read_image(tmp_path / "o.png")[0].shape == (60, 60)


@pytest.mark.parametrize("scale", ["0", "-2", "1", "17"])
def test_eval_scale_is_checked_before_any_work(tmp_path, camera, capsys, scale):
    from napari_srcnn.cli import main

    write_image(tmp_path / "c.png", camera[:40, :40])
    assert main(["eval", str(tmp_path), "--scale", scale, "--bicubic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "from 2 to 16" in err[0]


def test_models_survives_broken_and_odd_registered_files(tmp_path, monkeypatch, capsys):
    import torch

    from napari_srcnn.cli import main
    from napari_srcnn.engine import weights as W
    from napari_srcnn.engine.model import SRCNN, ArchSpec
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import save_weights

    net = SRCNN(ArchSpec.parse("3-1-3:4,2"))
    odd = ModelInfo(
        name="odd", arch=net.spec, scale=2.0, metrics={"Set5": 31.0, "Set14": {"psnr": "high"}}
    )
    good = save_weights(tmp_path / "odd.safetensors", net, odd)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    monkeypatch.setattr(W, "_REGISTERED", {"odd": good, "bad": tmp_path / "bad.safetensors"})
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "odd" in out and "bad" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("napari-srcnn: warning: model 'bad' left out")
    assert main(["models", "--json"]) == 0
    assert [
        m["name"] for m in json.loads(capsys.readouterr().out) if m["name"] in ("odd", "bad")
    ] == ["odd"]
    del torch


def test_inputs_mapping_to_one_output_are_refused(tmp_path, tiny_model_path, camera):
    """a.png and a.jpg would both become out/a_x2.png: refuse instead of losing one."""
    write_image(tmp_path / "a.png", camera[:20, :20])
    write_image(tmp_path / "a.jpg", camera[:20, :20])
    (tmp_path / "out").mkdir()
    r = cli(
        "upscale",
        tmp_path / "a.png",
        tmp_path / "a.jpg",
        "-o",
        tmp_path / "out",
        "--weights",
        tiny_model_path,
    )
    assert r.returncode == 2 and "would both be written" in r.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_upscale_says_which_precision_ran(tmp_path, tiny_model_path, camera, monkeypatch):
    """The banner names the precision and why; auto on a (faked) AVX2-only CPU is fp32, an
    explicit --precision is honoured; --device mps is understood (and refused without MPS)."""
    from napari_srcnn.engine.device import mps_available

    write_image(tmp_path / "in.png", camera[:32, :32], ImageMeta(axes="YX"))
    common = ("upscale", tmp_path / "in.png", "--weights", tiny_model_path, "--scale", 2)
    monkeypatch.setenv("NAPARI_SRCNN_CPU_FLAGS", "sse2 avx2 fma")
    r = cli(*common, "-o", tmp_path / "a.png")
    assert r.returncode == 0, r.stderr
    assert "on cpu, precision fp32 (auto: this CPU has no native bf16)" in r.stdout
    assert ", fp32; intensities: data range" in r.stdout
    r = cli(*common, "-o", tmp_path / "b.png", "--precision", "bf16", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "precision bf16 (asked for" in r.stdout and ", bf16; intensities:" in r.stdout
    if not mps_available():
        r = cli(*common, "-o", tmp_path / "c.png", "--device", "mps")
        assert r.returncode == 2 and "MPS (the Apple GPU) is not available" in r.stderr


def test_an_ascii_terminal_gets_escapes_not_a_crash(tmp_path, tiny_model_path, camera):
    """Row 9 of issue 15: the banner's "×" (and "µm", "–") on a stream that cannot encode them."""
    write_image(tmp_path / "in.png", camera[:20, :20])
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    r = subprocess.run(
        [sys.executable, "-m", "napari_srcnn", "upscale", "in.png", "-o", "o.png"]
        + ["--weights", str(tiny_model_path), "--scale", "3"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert b"\\xd72" in r.stdout and b"\\xd73" in r.stderr  # the banner and the warning
    assert (tmp_path / "o.png").is_file()


def test_eval_warns_once_about_another_factor(tmp_path, camera, capsys):
    """Row 17: the protocol's model is loaded twice (to pick its colour mode, then to run):
    one warning line, not two."""
    from napari_srcnn.cli import main

    write_image(tmp_path / "c.png", camera)
    assert main(["eval", str(tmp_path), "--scale", "16", "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-srcnn: warning: ") and "×16" in err[0]


def test_a_run_that_fails_prints_only_its_error(tmp_path, tiny_model_path, camera, capsys):
    """A warning raised while the inputs are checked (a model at another factor) is held back:
    the failing run prints its one error line."""
    from napari_srcnn.cli import main

    write_image(tmp_path / "in.png", camera[:20, :20])
    rc = main(
        ["upscale", str(tmp_path / "in.png"), str(tmp_path / "gone.png"), "-o", str(tmp_path)]
        + ["--weights", str(tiny_model_path), "--scale", "3"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "gone.png' does not exist" in err


def test_upscale_and_eval_take_and_report_the_strength(tmp_path, camera):
    """--strength 0 writes bicubic, a measured strength is printed, and eval's data-range
    table has a strength column (16-bit data: scored over its own range)."""
    from napari_srcnn.engine.resize import imresize

    image = (camera.astype(np.uint16) * 16)[:64, :64]
    write_image(tmp_path / "in.tif", image, ImageMeta(axes="YX"))
    r = cli("upscale", tmp_path / "in.tif", "-o", tmp_path / "b.tif", "--scale", 2, "--strength", 0)
    assert r.returncode == 0, r.stderr
    assert "; strength 0)" in r.stdout
    expected = np.clip(np.rint(imresize(image.astype(np.float64), 2.0)), 0, 65535)
    out, _ = read_image(tmp_path / "b.tif")
    assert np.abs(out.astype(np.int64) - expected).max() <= 1
    r = cli("upscale", tmp_path / "in.tif", "-o", tmp_path / "a.tif", "--scale", 2)
    assert r.returncode == 0, r.stderr
    measured = float(r.stdout.strip().rsplit("; strength ", 1)[1].rstrip(")"))
    assert 0 <= measured <= 1
    r = cli("eval", tmp_path / "in.tif", "--scale", 2, "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["images"][0]
    assert 0 <= row["strength"] <= 1
