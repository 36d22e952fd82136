"""``napari-srcnn train``: the real command, killed and resumed, under torchrun, on bad data.

The slow parts are process start-up (importing torch) and the CPU; every run here uses a
tiny network on small real images so that the file stays well under a minute or two.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile
import torch
from safetensors import safe_open

from napari_srcnn.cli import main
from napari_srcnn.engine.checkpoints import read_checkpoint_state
from napari_srcnn.engine.io import write_image
from napari_srcnn.engine.weights import load_model

TINY = [
    "--scratch",
    "--arch",
    "3-1-3:8,4",
    "--patch",
    "21",
    "--batch",
    "8",
    "--lr",
    "3e-3",
    "--device",
    "cpu",
    "--seed",
    "0",
]


# One compute thread per process: on a small machine that is busy with other work, two
# OpenMP threads per process spin against each other and run up to ten times slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def command(*args):
    return [sys.executable, "-m", "napari_srcnn", *map(str, args)]


def popen(*args):
    return subprocess.Popen(
        command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def cli(*args, cwd=None):
    return subprocess.run(
        command(*args), capture_output=True, text=True, cwd=cwd, timeout=600, env=ENV
    )


def weights(path):
    return {k: v.clone() for k, v in load_model(path).net.state_dict().items()}


@pytest.fixture(scope="module")
def camera_stack(tmp_path_factory, camera):
    """Four 64×64 planes of a real photo as a 16-bit z-stack TIFF."""
    tiles = np.stack([camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)])
    path = tmp_path_factory.mktemp("stack") / "camera_z.tif"
    tifffile.imwrite(path, tiles.astype(np.uint16) * 257, imagej=True, metadata={"axes": "ZYX"})
    return path


@pytest.fixture(scope="module")
def ihc_stack(tmp_path_factory):
    """A real microscopy stack: scikit-image's immunohistochemistry slide (bundled, CC0),
    green channel, cut into sixteen 128×128 fields of view stored as a 16-bit z-stack."""
    from skimage import data

    ihc = data.immunohistochemistry()[..., 1]
    fields = np.stack(
        [ihc[y : y + 128, x : x + 128] for y in range(0, 512, 128) for x in range(0, 512, 128)]
    )
    path = tmp_path_factory.mktemp("ihc") / "ihc_fields.tif"
    tifffile.imwrite(path, fields.astype(np.uint16) * 257, imagej=True, metadata={"axes": "ZYX"})
    return path


# ------------------------------------------------------------------ kill and resume


def _wait_for(predicate, proc, timeout=240):
    start = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(
                f"training ended (rc {proc.returncode}) before it could be killed:\n"
                + proc.stdout.read()
                + proc.stderr.read()
            )
        if time.monotonic() - start > timeout:
            proc.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.01)


def _checkpoint_step(path):
    try:
        return read_checkpoint_state(path)["step"]
    except Exception:  # not written yet
        return -1


def test_sigkill_at_two_points_then_resume_equals_uninterrupted(tmp_path, camera_stack):
    args = [
        "train",
        camera_stack,
        "--scale",
        2,
        *TINY,
        "--steps",
        100,
        "--val-every",
        10,
        "--val-fraction",
        0.25,
    ]
    ref = popen(*args, "-o", tmp_path / "ref.safetensors")
    out = tmp_path / "run.safetensors"
    ckpt = tmp_path / "run.ckpt.safetensors"
    steps_killed = []
    for cond, resume in (
        (lambda: _checkpoint_step(ckpt) >= 10, []),
        (lambda: _checkpoint_step(ckpt) >= 50, ["--resume", ckpt]),
    ):
        proc = popen(*args, "-o", out, *resume)
        _wait_for(cond, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        steps_killed.append(_checkpoint_step(ckpt))
    assert steps_killed[0] < 100 and steps_killed[1] < 100
    final = cli(*args, "-o", out, "--resume", ckpt)
    assert final.returncode == 0, final.stderr
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err
    pattern = re.compile(r"trained (\d+\.\d+) dB")
    assert pattern.search(final.stdout).group(1) == pattern.search(ref_out).group(1)
    a, b = load_model(tmp_path / "ref.safetensors"), load_model(out)
    assert abs(a.info.metrics["validation"]["psnr"] - b.info.metrics["validation"]["psnr"]) < 0.01
    assert a.info.metrics == b.info.metrics  # same best step, same scores: bit-identical run
    assert all(torch.equal(v, b.net.state_dict()[k]) for k, v in a.net.state_dict().items())
    assert (
        read_checkpoint_state(ckpt)["history"]
        == read_checkpoint_state(tmp_path / "ref.ckpt.safetensors")["history"]
    )


# ------------------------------------------------------------------ a real fine-tune


@pytest.fixture(scope="module")
def start_model(tmp_path_factory):
    """A small 1-channel ×2 model pre-trained on natural photos (standing in for a shipped one).

    It starts as a network that reproduces its bicubic input (so that a CPU-minute of
    training already beats bicubic) and is trained on four scikit-image photos.
    """
    from skimage import data

    from napari_srcnn.engine.data import training_data_from_arrays
    from napari_srcnn.engine.model import SRCNN, ArchSpec, init_identity
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.engine.training import train
    from napari_srcnn.engine.weights_file import save_weights

    folder = tmp_path_factory.mktemp("start")
    arch = ArchSpec.parse("9-1-5:32,16")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = SRCNN(arch)
    init_identity(net)
    save_weights(
        folder / "identity.safetensors", net, ModelInfo(name="identity", arch=arch, scale=2.0)
    )
    photos = [data.camera(), data.coins(), data.astronaut(), data.chelsea()]
    tdata = training_data_from_arrays(photos, 2.0, "y", val_fraction=0.25)
    config = TrainConfig(
        output=folder / "natural-x2.safetensors",
        scale=2.0,
        init_from=str(folder / "identity.safetensors"),
        steps=200,
        batch_size=32,
        lr=1e-3,
        val_every=150,
        device="cpu",
    )
    return train(tdata, config).output


def test_fine_tune_on_a_microscopy_stack_beats_bicubic(tmp_path, ihc_stack, start_model):
    out = tmp_path / "ihc-x2.safetensors"
    r = cli(
        "train",
        ihc_stack,
        "--scale",
        2,
        "--from",
        start_model,
        "--steps",
        200,
        "--batch",
        32,
        "--lr",
        "5e-4",
        "--val-every",
        50,
        "--val-fraction",
        0.25,
        "--device",
        "cpu",
        "-o",
        out,
    )
    assert r.returncode == 0, r.stderr
    assert "fine-tuning" in r.stdout and "12 training / 4 validation plane(s)" in r.stdout
    m = re.search(
        r"held-out PSNR on 4 plane\(s\): bicubic (\S+) dB, start model (\S+) dB, "
        r"fine-tuned (\S+) dB",
        r.stdout,
    )
    assert m, r.stdout
    bicubic, start, tuned = (float(v) for v in m.groups())
    print(
        f"\nihc ×2, 4 held-out fields: bicubic {bicubic:.2f} dB, start {start:.2f} dB, "
        f"fine-tuned {tuned:.2f} dB"
    )
    assert tuned > bicubic + 0.3, r.stdout
    assert tuned > start
    # The weights load in `upscale` (keeping the 16-bit dtype) and in `eval`.
    info = load_model(out).info
    assert (
        info.color_mode == "per-channel"
        and info.normalization == "auto"
        and info.training["val_planes"] == 4
    )
    field = tifffile.imread(ihc_stack)[0]
    write_image(tmp_path / "lr.tif", field[::2, ::2])
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "lr.tif"),
                "-o",
                str(tmp_path / "sr.tif"),
                "--weights",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert tifffile.imread(tmp_path / "sr.tif").dtype == np.uint16
    write_image(tmp_path / "hr.png", (field // 257).astype(np.uint8))
    assert (
        main(
            [
                "eval",
                str(tmp_path / "hr.png"),
                "--scale",
                "2",
                "--weights",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )


# ------------------------------------------------------------------ options and logging


def test_epochs_grid_no_augment_blur_and_log_lines(tmp_path, camera_stack, capsys):
    out = tmp_path / "g.safetensors"
    rc = main(
        [
            "train",
            str(camera_stack),
            "--scale",
            "2",
            *TINY,
            "--epochs",
            "2",
            "--grid",
            "--no-augment",
            "--blur",
            "0.8",
            "--val-every",
            "4",
            "--val-fraction",
            "0.25",
            "-o",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # Three 64×64 training planes hold 4×4 sub-images of 21 px on the stride-14 grid:
    # 2 epochs of 48 at 8 per step are 12 steps.
    assert "12 steps" in captured.out.splitlines()[0]
    lines = [ln for ln in captured.out.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["0/12", "4/12", "8/12", "12/12"]
    assert all(
        re.search(r"val PSNR \d+\.\d\d dB  bicubic \d+\.\d\d dB  best \d+\.\d\d dB", ln)
        for ln in lines
    )
    assert "loss" in lines[1] and "trained" in captured.out
    training = load_model(out).info.training
    assert (
        training["grid_stride"] == 14
        and training["augment"] is False
        and training["blur_sigma"] == 0.8
    )
    assert training["config"]["steps"] == 12


# ------------------------------------------------------------------ bad data


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, camera):
    d = tmp_path_factory.mktemp("bad")
    tifffile.imwrite(d / "small.tif", np.zeros((5, 20, 30), np.uint16))
    nan = np.ones((2, 64, 64), np.float32)
    nan[1, 3, 4] = np.nan
    tifffile.imwrite(d / "nan.tif", nan)
    (d / "empty.tif").write_bytes(b"")
    (d / "empty_dir").mkdir()
    (d / "w.safetensors").write_bytes(b"weights")
    for name, planes in (
        ("hr", [camera[:64, :64]] * 4),
        ("lr", [camera[:20, :30]] * 4),
        ("lr2", [camera[:32, :32]] * 2),
    ):
        tifffile.imwrite(d / f"{name}.tif", np.stack(planes), photometric="minisblack")
    return d


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["empty.tif"], "empty file"),
        (["empty_dir"], "no images"),
        (["missing.tif"], "does not exist"),
        (["small.tif"], "smaller than a 33×33 sub-image"),
        (["nan.tif"], "NaN or Inf"),
        (["hr.tif", "--lr-data", "lr.tif"], "does not match HR plane"),
        (["hr.tif", "--lr-data", "lr2.tif"], "different numbers of planes"),
        (["hr.tif", "--val-fraction", "1"], "validation fraction"),
        (["hr.tif", "--epochs", "-1"], "epochs"),
        (["hr.tif", "--batch", "0"], "--batch must be a positive integer"),
        (["hr.tif", "--resume", "nope.ckpt.safetensors"], "does not exist; start without --resume"),
        (["hr.tif", "-o", "out.pt"], "must end in .safetensors"),
        (["hr.tif", "--channels", "rgb"], "RGB model needs RGB images"),
        (["hr.tif", "--from", "w.safetensors", "-o", "w.safetensors"], "would overwrite the input"),
    ],
)
def test_bad_data_is_one_line_and_exit_2(bad_files, args, message, capsys, monkeypatch):
    monkeypatch.chdir(bad_files)
    length = [] if "--epochs" in args else ["--steps", "1"]
    start = [] if "--from" in args else ["--scratch"]
    rc = main(["train", *args, "--scale", "2", *length, "--device", "cpu", *start])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("napari-srcnn: error: ") and err.count("\n") == 1 and message in err


def test_bad_data_exit_code_of_the_real_process(bad_files):
    r = cli("train", bad_files / "nan.tif", "--scale", 2, "--scratch")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "NaN" in r.stderr


# ------------------------------------------------------------------ torchrun / DDP

PROBE = """
import os, sys
real_replace = os.replace

def replace(src, dst, *args, **kwargs):  # every file the trainer writes ends in os.replace
    with open(os.path.join({log!r}, "rank%s.log" % os.environ["RANK"]), "a") as log:
        log.write(os.fspath(dst) + "\\n")
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
from napari_srcnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_torchrun_two_cpu_processes_on_gloo(tmp_path, camera_stack):
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE.format(log=str(tmp_path))))
    out = tmp_path / "ddp.safetensors"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(probe),
            "train",
            str(camera_stack),
            "--scale",
            "2",
            *TINY,
            "--steps",
            "8",
            "--val-every",
            "4",
            "--val-fraction",
            "0.25",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("wrote ") == 1 and r.stdout.count("held-out PSNR") == 1
    assert not (tmp_path / "rank1.log").exists()  # only rank 0 writes files
    written = (tmp_path / "rank0.log").read_text().split()
    assert str(out) in written and str(tmp_path / "ddp.ckpt.safetensors") in written
    info = load_model(out).info
    assert info.training["world_size"] == 2 and info.training["steps"] in (0, 4, 8)
    with safe_open(str(tmp_path / "ddp.ckpt.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())  # noqa: SIM118
        assert {"rng", "rng.1"} <= keys and fh.metadata()["world"] == "2"
    assert read_checkpoint_state(tmp_path / "ddp.ckpt.safetensors")["step"] == 8


def test_a_dim_single_plane_fine_tunes_with_the_defaults_and_never_collapses(tmp_path, camera):
    """One 256² uint16 plane with values 98..175 (a dim 16-bit image), the default settings:
    a strip of the plane validates, the run ends at or above the starting model there, and the
    result is an image, not a constant."""
    from skimage.transform import resize

    big = resize(camera.astype(np.float64), (256, 256), order=3, anti_aliasing=False)
    plane = np.rint(98 + (big - big.min()) / (big.max() - big.min()) * 77).astype(np.uint16)
    path = tmp_path / "dim.tif"
    tifffile.imwrite(path, plane)
    out = tmp_path / "dim-x2.safetensors"
    r = cli("train", path, "--scale", 2, "--steps", 40, "--val-every", 20, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "1 training / 1 validation plane(s)" in r.stdout and "region" in r.stdout
    m = re.search(r"start model (\S+) dB, fine-tuned (\S+) dB", r.stdout)
    assert m, r.stdout
    start, tuned = (float(v) for v in m.groups())
    assert tuned >= start
    # Its LR partners were rounded onto the plane's 78 levels, as a camera stores them.
    info = load_model(out).info
    assert info.training["lr_levels"] == "stored"
    # Fine-tuning kept black black: the run checked and recorded it, and says so.
    flat = info.metrics["flat_max_error_255"]
    assert flat <= 0.5 and f"flat images stay flat within {flat:.2f}/255" in r.stdout
    lr = plane[::2, ::2]
    write_image(tmp_path / "lr.tif", lr)
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "lr.tif"),
                "-o",
                str(tmp_path / "sr.tif"),
                "--weights",
                str(out),
                "--scale",
                "2",
            ]
        )
        == 0
    )
    sr = tifffile.imread(tmp_path / "sr.tif")
    assert sr.dtype == np.uint16 and sr.shape == (256, 256)
    assert 90 <= sr.min() < 110 and 165 < sr.max() <= 185  # its range kept: not a white square
    assert np.corrcoef(sr.ravel().astype(float), plane.ravel().astype(float))[0, 1] > 0.95


def test_train_menus_list_what_the_engine_accepts():
    """The CLI spells its --init/--recipe choices out (no torch import for --help)."""
    from napari_srcnn.cli import build_parser
    from napari_srcnn.engine.train_config import INITS, LOSSES, RECIPES

    sub = next(a for a in build_parser()._actions if a.choices and "train" in a.choices)
    options = {a.dest: a.choices for a in sub.choices["train"]._actions}
    assert tuple(options["init"]) == INITS and tuple(options["recipe"]) == RECIPES
    assert tuple(options["loss"]) == LOSSES
    from napari_srcnn.engine.planes import COLOR_MODES

    assert tuple(options["channels"]) == COLOR_MODES  # one word per mode, the engine's
    from napari_srcnn.engine.data import LR_LEVELS
    from napari_srcnn.engine.degradation import DEGRADATIONS

    assert tuple(options["lr_levels"]) == LR_LEVELS
    assert tuple(options["degradation"]) == DEGRADATIONS


def test_init_flag_is_recorded_and_a_resume_must_keep_it(tmp_path, camera_stack):
    out = tmp_path / "p.safetensors"
    args = ["train", camera_stack, "--scale", 2, *TINY, "--val-fraction", 0.25, "-o", out]
    r = cli(*args, "--steps", 4, "--val-every", 2, "--init", "pytorch")
    assert r.returncode == 0, r.stderr
    assert load_model(out).info.training["config"]["init"] == "pytorch"
    ckpt = tmp_path / "p.ckpt.safetensors"
    r = cli(*args, "--steps", 8, "--val-every", 2, "--resume", ckpt)  # default init: identity
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "init 'pytorch'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ second round (issue 15)


def _files(folder):
    """Every file under ``folder`` with its bytes (what a refused run must leave alone)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _low_memory(monkeypatch, limit):
    from napari_srcnn.engine import memory

    monkeypatch.setattr(memory, "available_memory", lambda: limit)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, camera_stack):
    """A finished 4-step run: its weights and its checkpoint (at step 4)."""
    folder = tmp_path_factory.mktemp("done")
    out = folder / "a.safetensors"
    rc = main(
        ["train", str(camera_stack), "--scale", "2", *TINY, "--val-fraction", "0.25"]
        + ["--steps", "4", "--val-every", "2", "-o", str(out)]
    )
    assert rc == 0 and out.is_file()
    return folder


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["--seed", "-1"], None, "--seed -1 must be an integer from 0 to 2**63 - 1"),
        (["--seed", str(2**70)], None, "must be an integer from 0 to 2**63 - 1"),
        (["--blur", "1e9"], None, "--blur 1e+09 must be from 0 to 32"),
        (["--blur", "-1"], None, "--blur -1 must be from 0 to 32"),
        (["--lr", "1e30"], None, "--lr 1e+30 must be above 0 and at most 1"),
        (["--lr", "0"], None, "must be above 0"),
        (["--intensity-augment", "2"], None, "must be a share from 0 to 1"),
        (["--ema", "1"], None, "--ema 1 must be from 0 (off) to below 1"),
        (["--ema", "nan"], None, "--ema nan must be from 0 (off) to below 1"),
        (["--loss", "l1", "--recipe", "paper"], None, "--loss l1 needs --recipe adam"),
        (["--batch", "100000000"], None, "a training step of 100000000 sub-images"),
        (["-o", "c.safetensors"], "ckpt-folder", "'c.ckpt.safetensors' is a folder"),
        (["-o", "x" * 240 + ".safetensors"], None, "more than the 255 the file system allows"),
        ([], "low-memory", "building the training data needs about"),
        (["--resume", "RUN/a.ckpt.safetensors", "--steps", "4"], None, "is at step 4 already"),
        (["--resume", "RUN/a.ckpt.safetensors", "--steps", "3"], None, "is at step 4 already"),
        (["--resume", "RUN/a.safetensors"], None, "not a napari-srcnn training checkpoint"),
    ],
)
def test_bad_options_are_refused_before_any_work(
    args, setup, message, tmp_path, camera_stack, finished_run, capsys, monkeypatch
):
    """Rows 1, 3, 14, 16 of issue 15: one line, exit code 2, and no file made or changed
    (the checkpoint a refused resume names included)."""
    monkeypatch.chdir(tmp_path)
    if setup == "ckpt-folder":
        (tmp_path / "c.ckpt.safetensors").mkdir()
    if setup == "low-memory":
        _low_memory(monkeypatch, 16 << 20)
    args = [a.replace("RUN", str(finished_run)) for a in args]
    before, run_before = _files(tmp_path), _files(finished_run)
    length = [] if "--steps" in args else ["--steps", "3"]
    rc = main(["train", str(camera_stack), "--scale", "2", *TINY, *length, *args])
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert captured.err.startswith("napari-srcnn: error: ") and captured.err.count("\n") == 1
    assert message in captured.err, captured.err
    assert captured.out == ""  # nothing started: not even the banner
    assert _files(tmp_path) == before and _files(finished_run) == run_before


def test_resume_into_a_new_output_writes_it(tmp_path, camera_stack, finished_run, capsys):
    """Row 1: 'wrote b.safetensors' is true: the new output holds the best of the resumed
    steps (the old one keeps the earlier best) and loads."""
    out = tmp_path / "b.safetensors"
    rc = main(
        ["train", str(camera_stack), "--scale", "2", *TINY, "--val-fraction", "0.25"]
        + ["--steps", "6", "--val-every", "2", "-o", str(out)]
        + ["--resume", str(finished_run / "a.ckpt.safetensors")]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"wrote {out}" in captured.out and out.is_file()
    assert load_model(out).info.training["steps"] >= 4
    assert read_checkpoint_state(tmp_path / "b.ckpt.safetensors")["step"] == 6


def test_a_run_that_diverges_at_once_leaves_no_file(tmp_path, camera, monkeypatch):
    """Row 14: the starting model is written only once a step has gone well; a run that
    diverges at its first step leaves nothing behind (nor does a refused batch)."""
    from napari_srcnn.engine import training
    from napari_srcnn.engine.data import training_data_from_arrays
    from napari_srcnn.engine.model import ArchSpec
    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.engine.training import train
    from napari_srcnn.errors import InputError

    planes = [camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)]
    data = training_data_from_arrays(planes, 2.0, "per-channel", patch_size=21, val_fraction=0.25)
    real = training.batch_loss

    def diverging(pred, target, recipe, loss="l2"):
        loss, mse = real(pred, target, recipe, loss)
        return loss * float("inf"), mse * float("inf")

    monkeypatch.setattr(training, "batch_loss", diverging)
    config = TrainConfig(
        output=tmp_path / "d.safetensors",
        scale=2.0,
        arch=ArchSpec.parse("3-1-3:8,4"),
        steps=5,
        batch_size=4,
        patch_size=21,
        val_every=1,
        checkpoint_every=1,
        device="cpu",
    )
    events = []
    with pytest.raises(InputError, match="training diverged at step 1"):
        train(data, config, on_event=events.append)
    assert events and events[0].step == 0  # the start was scored, not written
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(training, "batch_loss", real)
    result = train(data, config)  # and a healthy run writes
    assert result.output.is_file() and config.checkpoint_path.is_file()


def test_train_config_takes_numpy_numbers_and_refuses_other_types():
    """Row 15 of issue 15, for training: NumPy integers and floats are numbers."""
    from fractions import Fraction

    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.errors import InputError

    config = TrainConfig(
        output="x.safetensors",
        seed=np.int64(3),
        steps=np.int32(5),
        scale=np.float32(2),
        lr=Fraction(1, 1000),
        grid_stride=np.int8(7),
    )
    assert (config.seed, config.steps, config.scale, config.lr, config.grid_stride) == (
        3,
        5,
        2.0,
        0.001,
        7,
    )
    assert type(config.seed) is int and type(config.scale) is float
    for kwargs, message in (
        ({"output": 5}, "is not a file path"),
        ({"output": "x.safetensors", "lr": "fast"}, "learning rate 'fast'"),
        ({"output": "x.safetensors", "seed": -1}, "seed -1 must be an integer from 0"),
        ({"output": "x.safetensors", "seed": 2**64}, "must be an integer from 0 to 2**63 - 1"),
        ({"output": "x.safetensors", "lr": 10.0}, "at most 1"),
        ({"output": "x.safetensors", "steps": 2.5}, "steps must be a positive integer"),
    ):
        with pytest.raises(InputError, match=re.escape(message)):
            TrainConfig(**kwargs)
