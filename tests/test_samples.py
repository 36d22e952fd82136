"""The bundled sample pairs and ``napari-srcnn samples``."""

import subprocess
import sys

import numpy as np
import pytest

from napari_srcnn.engine.io import read_image
from napari_srcnn.engine.resize import output_size
from napari_srcnn.errors import InputError
from napari_srcnn.samples import SAMPLES, copy_samples, sample_path


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_pairs_are_x3_apart(key):
    lr, lr_meta = read_image(sample_path(f"{key}-lr"))
    hr, hr_meta = read_image(sample_path(f"{key}-hr"))
    assert lr.dtype == hr.dtype and lr_meta.axes == hr_meta.axes
    for ax in lr_meta.spatial_axes:
        assert output_size(lr.shape[ax], 3) == hr.shape[ax]
    assert not np.array_equal(lr, lr.flat[0])  # real image content


def test_unknown_sample_and_copy(tmp_path):
    with pytest.raises(InputError, match="no sample named"):
        sample_path("zebra-lr")
    written = copy_samples(tmp_path, ["cell"])
    assert sorted(p.name for p in written) == ["cell_hr.tif", "cell_lr_x3.tif"]
    assert all(
        p.read_bytes() == sample_path(f"cell-{p.name.split('_')[1][:2]}").read_bytes()
        for p in written
    )


def test_samples_command(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "napari_srcnn", "samples", "--copy", str(tmp_path), "photo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astronaut_hr.tif", "astronaut_lr_x3.tif"]


def test_unknown_names_are_refused_before_anything_is_copied(tmp_path):
    with pytest.raises(InputError, match="no sample named 'nope'; choose one of photo, cell, ihc"):
        copy_samples(tmp_path, ["cell", "nope"])
    assert not list(tmp_path.iterdir())


def test_a_planted_symlink_is_replaced_never_followed(tmp_path):
    """Row 7 of issue 15: the copy is atomic (temp file + rename), so a link at a target's name
    is replaced by the sample and the file it pointed to is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "cell_hr.tif").symlink_to(victim)
    written = copy_samples(folder, ["cell"])
    assert victim.read_text() == "precious"
    link = folder / "cell_hr.tif"
    assert link in written and not link.is_symlink()
    assert link.read_bytes() == sample_path("cell-hr").read_bytes()


def test_a_full_disk_leaves_no_truncated_file(tmp_path, monkeypatch):
    import errno
    import shutil

    from napari_srcnn.errors import WriteError

    real = shutil.copyfile

    def half_then_full(src, dst, *args, **kwargs):
        real(src, dst)
        with open(dst, "r+b") as fh:
            fh.truncate(1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "cell_lr_x3.tif").write_bytes(b"an older copy")
    monkeypatch.setattr(shutil, "copyfile", half_then_full)
    with pytest.raises(WriteError, match="No space left on device"):
        copy_samples(tmp_path, ["cell"])
    assert [p.name for p in tmp_path.iterdir()] == ["cell_lr_x3.tif"]
    assert (tmp_path / "cell_lr_x3.tif").read_bytes() == b"an older copy"


def test_samples_command_errors_are_one_line(tmp_path, capsys):
    from napari_srcnn.cli import main

    assert main(["samples", "--copy", str(tmp_path), "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "napari-srcnn: error: no sample named 'nope'; choose one of photo, cell, ihc\n"
    assert not list(tmp_path.iterdir())


def test_copy_samples_takes_one_name_and_refuses_a_folder_that_is_not_a_path(tmp_path):
    assert [p.name for p in copy_samples(tmp_path, "cell")] == ["cell_lr_x3.tif", "cell_hr.tif"]
    with pytest.raises(InputError, match="folder None is not a path"):
        copy_samples(None)
