"""The npe2 manifest (napari.yaml) as napari finds it: through the installed distribution.

`npe2 validate` runs here, in the test suite, and again in `tox -e package` on the wheel
installed without the source tree. These tests need npe2 (the `testing` extra), not napari,
except the import check, which imports every command's ``python_name``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

npe2 = pytest.importorskip("npe2")

ROOT = Path(__file__).resolve().parents[1]
DIST = "napari-srcnn"
# Patterns that would take every TIFF/PNG from napari's own reader (DESIGN: keep them narrow).
GREEDY_PATTERNS = {"*", "*.*", "*.tif", "*.tiff", "*.png", "*.jpg", "*.jpeg"}


@pytest.fixture(scope="module")
def manifest():
    return npe2.PluginManifest.from_distribution(DIST)


def test_npe2_validate_passes():
    """The command a plugin author runs before a release, on the installed distribution."""
    r = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", DIST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in r.stdout


def test_manifest_is_found_through_the_entry_point(manifest):
    eps = [ep for ep in distribution(DIST).entry_points if ep.group == "napari.manifest"]
    assert [ep.value for ep in eps] == ["napari_srcnn:napari.yaml"]
    assert manifest.name == DIST
    assert manifest.display_name
    import napari_srcnn

    assert manifest.package_version == napari_srcnn.__version__


def test_every_contribution_points_to_a_declared_command(manifest):
    contributions = manifest.contributions
    declared = {c.id for c in contributions.commands or []}
    assert all(cid.startswith(f"{DIST}.") for cid in declared), declared
    used = [
        item.command
        for kind in ("readers", "writers", "widgets", "sample_data")
        for item in getattr(contributions, kind) or []
        if getattr(item, "command", None)
    ]
    assert set(used) <= declared, set(used) - declared
    for command in contributions.commands or []:
        assert command.python_name, command.id
        module = command.python_name.split(":")[0]
        assert module.startswith("napari_srcnn"), command.python_name


def test_reader_patterns_are_narrow(manifest):
    for reader in manifest.contributions.readers or []:
        greedy = GREEDY_PATTERNS & {p.lower() for p in reader.filename_patterns}
        assert not greedy, f"{reader.command} takes {greedy} from napari's own reader"


@pytest.mark.skipif(
    importlib.util.find_spec("napari") is None, reason="npe2 --imports needs napari installed"
)
def test_every_python_name_imports():
    """`npe2 validate --imports`: every command's module and attribute exist."""
    r = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", DIST, "--imports"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_top_level_napari_yaml_is_the_packaged_one():
    """The design card shows napari.yaml at the top; it must be the file the wheel ships."""
    top = ROOT / "napari.yaml"
    if not top.exists():
        pytest.skip("no top-level napari.yaml (an sdist has only the packaged one)")
    assert top.resolve() == (ROOT / "src" / "napari_srcnn" / "napari.yaml").resolve()
