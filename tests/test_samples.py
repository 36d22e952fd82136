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
