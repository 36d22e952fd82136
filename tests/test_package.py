"""The release as a user gets it: version in one place, data files inside the installed
package, and the README's commands kept in step with CI and with the CLI.

Under tox the package is installed from the wheel, so the resource checks here check the
wheel's contents (``tox -e package`` checks them again without the source tree).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from importlib import resources
from importlib.metadata import metadata
from pathlib import Path

import pytest

import napari_srcnn

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = resources.files("napari_srcnn")


def _readme_commands() -> list[str]:
    """The README's set-up commands: the ```bash blocks of its "Quick start" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", section, flags=re.S)
    return [" ".join(line.rstrip("\\").strip() for line in b.strip().splitlines()) for b in blocks]


def test_version_lives_in_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/napari_srcnn/__init__.py"
    assert metadata("napari-srcnn")["Version"] == napari_srcnn.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d+\.\d+\.\d+[^\]]*)\]", changelog, flags=re.M)
    assert released and released[0] == napari_srcnn.__version__, released[:1]


def test_metadata_is_complete():
    meta = metadata("napari-srcnn")
    assert meta["Name"] == "napari-srcnn"
    assert meta["Summary"]
    assert meta.get("License-Expression") == "BSD-3-Clause"
    assert "Framework :: napari" in meta.get_all("Classifier")
    assert meta["Requires-Python"]
    extras = set(meta.get_all("Provides-Extra"))
    assert {"napari", "testing", "docs"} <= extras
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Bug Tracker", "Source Code"} <= set(urls)
    # the headless install (CLI on a GPU server) pulls neither napari nor Qt
    base = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in base if re.match(r"(napari|pyqt|pyside|qtpy|magicgui)\b", r, re.I)]


def test_installed_package_holds_manifest_samples_and_weights():
    assert PACKAGE.joinpath("napari.yaml").is_file()
    samples = [p for p in PACKAGE.joinpath("sample_data").iterdir() if p.is_file()]
    assert [p for p in samples if not p.name.endswith(".py")], "no sample images"
    weights = [p.name for p in PACKAGE.joinpath("weights").iterdir()]
    assert [w for w in weights if w.endswith(".safetensors")], "no shipped weights"
    assert not [w for w in weights if w.endswith(".ckpt.safetensors")], "checkpoints shipped"


def test_ci_runs_the_readme_test_command():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == commands[1]
    assert "tox" in ci and "py311" in ci and "package" in ci


def test_readme_upscale_command_runs(tmp_path):
    """The README's first command, minus its `pip install ... &&` (already installed here)."""
    install, run = _readme_commands()[0].split(" && ", 1)
    assert shlex.split(install)[-1] == "." and "torch==" in install
    # the README says python3; in a tox env that is this interpreter's venv
    env_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{env_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run(
        ["bash", "-c", run], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "photo_x3.png").stat().st_size > 0
    m = re.search(r"bicubic (-?[\d.]+) dB, SRCNN (-?[\d.]+) dB", r.stdout)
    assert m, r.stdout
    assert float(m.group(2)) > float(m.group(1)), r.stdout


def test_docs_nav_points_to_existing_pages():
    nav_text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s*([\w./-]+\.md)\s*$", nav_text, flags=re.M)
    assert pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("name", ["README.md", "CHANGELOG.md"])
def test_long_texts_have_no_placeholders(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert "TODO" not in text and "XX.XX" not in text
