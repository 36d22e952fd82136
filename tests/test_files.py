"""Nothing is lost: atomic writes, output-path checks, and inputs that are never modified.

Failures are simulated (monkeypatched writers, ``os.replace``, ``fsync``, ``mkstemp``), and
a real crash is made by SIGKILLing a writer process at random moments. Running as root
makes chmod-based read-only folders useless (root writes anyway), so read-only folders are
simulated where the package looks: ``os.access`` and ``tempfile.mkstemp``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_srcnn.engine import files as F
from napari_srcnn.engine.files import atomic_path, check_output_path, one_line
from napari_srcnn.engine.io import read_image, write_image
from napari_srcnn.errors import InputError, SRCNNError, WriteError

SRC = Path(__file__).resolve().parents[1] / "src"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------- atomic_path


def test_atomic_path_replaces_on_success_and_keeps_permissions(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.") and tmp.suffix == ".txt"
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible before the rename
    assert target.read_text() == "new"
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert _leftovers(tmp_path) == []


def test_atomic_path_new_file_gets_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "n.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "n.bin").st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("writer refused"),
        KeyboardInterrupt(),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EIO, "Input/output error"),
    ],
    ids=["error", "interrupt", "disk-full", "io-error"],
)
def test_atomic_path_failure_in_the_body_keeps_the_old_file(tmp_path, failure):
    target = tmp_path / "a.tif"
    target.write_bytes(b"precious")
    expected = WriteError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected) as info, atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise failure
    assert target.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []
    if isinstance(failure, OSError):
        err = info.value
        assert isinstance(err, SRCNNError) and isinstance(err, OSError)
        assert err.__cause__ is failure and "\n" not in str(err)
        assert "unchanged" in str(err)


def test_atomic_path_failed_rename_or_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"old weights")

    def failing(name):
        def fail(*args, **kwargs):
            raise OSError(errno.EIO, f"{name} failed")

        return fail

    for name in ("replace", "fsync"):
        with monkeypatch.context() as m:
            m.setattr(F.os, name, failing(name))
            with pytest.raises(WriteError, match=f"{name} failed"), atomic_path(target) as tmp:
                tmp.write_bytes(b"new weights")
        assert target.read_bytes() == b"old weights"
        assert _leftovers(tmp_path) == []


def test_atomic_path_in_a_read_only_or_missing_folder(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(WriteError, match="Read-only file system"), atomic_path(tmp_path / "x.tif"):
        pytest.fail("the body must not run")
    monkeypatch.undo()
    with pytest.raises(WriteError, match="No such file"), atomic_path(tmp_path / "no" / "x.tif"):
        pytest.fail("the body must not run")


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_write_image_disk_full_mid_write_keeps_the_previous_image(tmp_path, monkeypatch, suffix):
    """The writer gets half-way, then the disk is full: the old image is intact."""
    import imageio.v3 as iio

    path = tmp_path / f"result{suffix}"
    old = np.arange(64, dtype=np.uint8).reshape(8, 8)
    write_image(path, old)
    before = _sha(path)

    def half_then_full(target, *args, **kwargs):
        Path(target).write_bytes(b"II*\x00" + b"\x00" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    module, name = (tifffile, "imwrite") if suffix == ".tif" else (iio, "imwrite")
    monkeypatch.setattr(module, name, half_then_full)
    with pytest.raises(WriteError, match="No space left"):
        write_image(path, np.zeros((8, 8), np.uint8))
    assert _sha(path) == before and _leftovers(tmp_path) == []
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(path)[0], old)


def test_save_weights_disk_full_keeps_the_previous_weights(tmp_path, monkeypatch):
    import torch

    from napari_srcnn.engine import weights_file as W
    from napari_srcnn.engine.model import SRCNN, ArchSpec
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights import load_model
    from napari_srcnn.engine.weights_file import save_weights

    net = SRCNN(ArchSpec.parse("3-1-3:4,2"))
    info = ModelInfo(name="m", arch=net.spec, scale=2.0)
    path = save_weights(tmp_path / "m.safetensors", net, info)
    before = _sha(path)

    def half_then_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x10\x00\x00\x00")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(W, "save_file", half_then_full)
    with pytest.raises(WriteError, match="No space left"):
        save_weights(path, SRCNN(ArchSpec.parse("3-1-3:4,2")), info)
    assert _sha(path) == before and _leftovers(tmp_path) == []
    monkeypatch.undo()
    loaded = load_model(path)
    for a, b in zip(loaded.net.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------- real crashes

_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from napari_srcnn.engine.io import write_image

    target, ready = sys.argv[1], sys.argv[2]
    versions = [np.full((1024, 2048), v, np.uint16) for v in (1000, 2000)]
    open(ready, "w").close()
    i = 0
    while True:  # overwrite the same file until killed
        write_image(target, versions[i % 2])
        i += 1
    """
)


def test_sigkill_at_random_moments_never_leaves_a_broken_file(tmp_path):
    """A writer overwriting a 4 MiB TIFF in a loop is SIGKILLed at 6 random moments; every
    time, the file is complete and holds one of the two versions (old or new, never a mix)."""
    target, ready = tmp_path / "result.tif", tmp_path / "ready"
    write_image(target, np.full((1024, 2048), 1000, np.uint16))
    rng = random.Random(0)
    mid_write = 0
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    for _ in range(6):
        ready.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(ready)], env=env)
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert proc.poll() is None and time.monotonic() < deadline, "writer did not start"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        data, _ = read_image(target)
        assert data.shape == (1024, 2048) and np.unique(data).tolist() in ([1000], [2000])
        # A hard kill may leave the hidden temporary file; never a damaged target.
        leftovers = list(tmp_path.glob(".result.*.tmp.tif"))
        mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
    assert mid_write >= 1, "no kill landed during a write: the test proved nothing"


# ------------------------------------------------------------------------- check_output_path


def test_check_output_path(tmp_path, monkeypatch):
    src = tmp_path / "in.tif"
    write_image(src, np.zeros((4, 4), np.uint8))
    assert check_output_path(tmp_path / "out.tif", inputs=(src,)) == tmp_path / "out.tif"
    with pytest.raises(InputError, match="overwrite the input"):
        check_output_path(src, inputs=(src,))
    os.symlink(src, tmp_path / "alias.tif")
    with pytest.raises(InputError, match="overwrite the input"):
        check_output_path(tmp_path / "alias.tif", inputs=(src,))
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.tif")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_path(src / "o.tif")
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(InputError, match="invalid output path"):
        check_output_path(tmp_path / "nul\0byte.tif")
    with pytest.raises(InputError, match="invalid output path"):
        check_output_path(tmp_path / ("x" * 300) / "o.tif")
    # Read-only folder, simulated (root ignores chmod): os.access is what the check asks.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not mode & os.W_OK)
    with pytest.raises(InputError, match="not writable"):
        check_output_path(tmp_path / "out.tif")


def test_one_line():
    assert one_line("a\nb\n\tc  d") == "a b c d"
    assert one_line("\x1b[1mbold\x1b[0m text") == "bold text"
    assert len(one_line("x" * 1000, 50)) == 50


# ------------------------------------------------------------------------- inputs untouched


def test_upscale_and_eval_never_modify_their_inputs(tmp_path, tiny_model_path, camera, astronaut):
    """SHA-256 and mtime of every input (images and weights) before and after CLI runs."""
    from napari_srcnn.cli import main

    tif = write_image(tmp_path / "stack.tif", np.stack([camera[:40, :40]] * 2))
    png = write_image(tmp_path / "rgb.png", astronaut[:40, :40])
    nan = tmp_path / "nan.tif"
    arr = camera[:40, :40].astype(np.float32)
    arr[3, 3] = np.nan
    tifffile.imwrite(nan, arr)
    weights = Path(tiny_model_path)
    inputs = [tif, png, nan, weights]
    before = {p: (_sha(p), os.stat(p).st_mtime_ns) for p in inputs}
    (tmp_path / "out").mkdir()
    for src in (tif, png, nan):
        assert (
            main(["upscale", str(src), "-o", str(tmp_path / "out"), "--weights", str(weights)]) == 0
        )
    assert main(["upscale", str(tif), "-o", str(tif), "--weights", str(weights)]) == 2
    assert main(["eval", str(png), "--scale", "2", "--weights", str(weights), "--json"]) == 0
    assert {p: (_sha(p), os.stat(p).st_mtime_ns) for p in inputs} == before


def test_upscale_api_never_modifies_the_array(tiny_model_path, camera):
    from napari_srcnn.engine.inference import upscale

    for image in (
        camera[:30, :30].copy(),
        (camera[:30, :30] / 255).astype(np.float16),
        np.where(camera[:30, :30] > 200, np.nan, camera[:30, :30] / 255.0),
    ):
        copy = image.copy()
        image.flags.writeable = False  # any in-place write would raise
        upscale(image, str(tiny_model_path), 2.0)
        np.testing.assert_array_equal(image, copy)


def test_every_file_the_cli_writes_is_renamed_into_place(
    tmp_path, tiny_model_path, camera, monkeypatch
):
    """Each written file appears through os.replace from a hidden temp file in its folder."""
    from napari_srcnn.cli import main

    src = write_image(tmp_path / "in.tif", camera[:24, :24])
    renames: list[tuple[Path, Path]] = []
    real = os.replace

    def replace(a, b, *args, **kwargs):
        renames.append((Path(a), Path(b)))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(F.os, "replace", replace)
    (tmp_path / "out").mkdir()
    assert (
        main(["upscale", str(src), "-o", str(tmp_path / "out"), "--weights", str(tiny_model_path)])
        == 0
    )
    written = sorted(p for p in (tmp_path / "out").iterdir())
    assert written == [b for _, b in renames]
    for tmp, dst in renames:
        assert tmp.parent == dst.parent and tmp.name.startswith(f".{dst.stem}.")


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint_and_resume_works(
    tmp_path, monkeypatch
):
    """Training writes checkpoints through atomic_path: a failed write leaves the previous
    checkpoint intact, and training resumes from it."""
    from skimage import data

    from napari_srcnn.engine import checkpoints as C
    from napari_srcnn.engine.checkpoints import read_checkpoint_state
    from napari_srcnn.engine.data import training_data_from_arrays
    from napari_srcnn.engine.model import ArchSpec
    from napari_srcnn.engine.train_config import TrainConfig
    from napari_srcnn.engine.training import train

    tdata = training_data_from_arrays(
        [data.camera()[:96, :96], data.moon()[:96, :96]],
        2.0,
        "per-channel",
        patch_size=21,
        val_fraction=0.5,
        seed=0,
    )
    config = TrainConfig(
        output=tmp_path / "m.safetensors",
        scale=2.0,
        arch=ArchSpec.parse("3-1-3:4,2"),
        steps=6,
        batch_size=4,
        patch_size=21,
        val_every=2,
        checkpoint_every=2,
        device="cpu",
    )
    real = C.save_file
    calls = []

    def full_on_second(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            Path(filename).write_bytes(b"\x00" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(C, "save_file", full_on_second)
    with pytest.raises(WriteError, match="No space left"):
        train(tdata, config)
    ckpt = config.checkpoint_path
    assert read_checkpoint_state(ckpt)["step"] == 2  # the first checkpoint, intact
    assert _leftovers(tmp_path) == []
    monkeypatch.setattr(C, "save_file", real)
    resumed = train(tdata, config, resume=ckpt)
    assert resumed.steps == 6 and read_checkpoint_state(ckpt)["step"] == 6


def test_atomic_dir_renames_a_complete_folder_and_removes_a_failed_one(tmp_path):
    from napari_srcnn.engine.files import atomic_dir

    target = tmp_path / "out.zarr"
    with pytest.raises(WriteError, match="No space left"), atomic_dir(target) as tmp:
        (tmp / "chunk").write_bytes(b"x")
        raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        (tmp / "chunk").write_bytes(b"x")
        assert not target.exists()
    assert (target / "chunk").read_bytes() == b"x" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(InputError, match="already exists"), atomic_dir(target):
        pass


def test_a_long_valid_name_gets_a_temporary_file_that_fits(tmp_path):
    """Row 10 of issue 15: the hidden temporary name is shortened, the target is not."""
    from napari_srcnn.engine.files import name_max

    limit = name_max(tmp_path)
    for name in ("a" * (limit - 4) + ".tif", "µ" * ((limit - 4) // 2) + ".tif"):
        target = tmp_path / name
        assert len(os.fsencode(target.name)) <= limit
        with atomic_path(target) as tmp:
            assert len(os.fsencode(tmp.name)) <= limit and tmp.name.endswith(".tmp.tif")
            tmp.write_bytes(b"data")
        assert target.read_bytes() == b"data"
    with pytest.raises(InputError, match="more than the .* the file system allows"):
        check_output_path(tmp_path / ("a" * limit + ".tif"))


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.chmod(victim, 0o600)
    link = tmp_path / "out.tif"
    link.symlink_to(victim)
    with atomic_path(link) as tmp:
        tmp.write_bytes(b"new")
    assert victim.read_bytes() == b"precious" and not link.is_symlink()
    assert link.read_bytes() == b"new" and os.stat(link).st_mode & 0o777 != 0o600


_STUCK_WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    import tifffile
    from napari_srcnn.cli import main

    ready = pathlib.Path(sys.argv[1])
    real = tifffile.imwrite

    def stuck(path, *args, **kwargs):  # half a file in the temporary path, then a long wait
        real(path, *args, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(100)
        ready.touch()
        time.sleep(120)

    tifffile.imwrite = stuck
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.isolated
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 143, "napari-srcnn: terminated"),
        (signal.SIGINT, 130, "napari-srcnn: interrupted"),
    ],
)
def test_a_signal_mid_write_keeps_the_old_file_and_removes_the_temporary(
    tmp_path, tiny_model_path, camera, signum, code, line
):
    """SIGTERM (a scheduler's stop, ``timeout``) ends the CLI as Ctrl-C does: one line, exit
    code 143 (130 for Ctrl-C), the previous result byte-identical and no temporary file left."""
    src, dst, ready = tmp_path / "in.png", tmp_path / "out.tif", tmp_path / "ready"
    write_image(src, camera[:40, :40])
    write_image(dst, np.full((3, 3), 42, np.uint8))
    before = dst.read_bytes()
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    args = ["upscale", str(src), "-o", str(dst), "--weights", str(tiny_model_path), "--scale", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WRITER, str(ready), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code and err.strip().splitlines() == [line], err
    assert dst.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp*"))
