"""The Qt binding: the GUI extra installs PyQt6 (napari's PyQt5 support is deprecated), the
tests run on it (tox sets ``QT_API=pyqt6``), and the plugin itself only talks to qtpy."""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest

import napari_srcnn

pytestmark = pytest.mark.gui


def test_the_viewer_and_the_widgets_run_on_the_binding_asked_for(viewer, widget):
    import qtpy
    from pytestqt.qt_compat import qt_api

    window = viewer.window._qt_window
    binding = type(window).__mro__[1].__module__.split(".")[0]  # e.g. PyQt6.QtWidgets
    print(f"\nQt binding: {qtpy.API_NAME} {qtpy.QT_VERSION}, napari window from {binding}")
    assert binding == qtpy.API_NAME  # napari, qtpy and the plugin: one binding
    assert qt_api.pytest_qt_api == qtpy.API_NAME.lower()  # pytest-qt too
    assert type(widget.native).__module__.startswith(qtpy.API_NAME)
    wanted = os.environ.get("QT_API")
    if wanted:  # tox and CI: pyqt6
        assert qtpy.API_NAME.lower() == wanted.lower()


def test_the_gui_extra_installs_pyqt6():
    requires = metadata.requires("napari-srcnn") or []
    gui = [r for r in requires if 'extra == "napari"' in r or "extra == 'napari'" in r]
    names = {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower() for r in gui}
    assert "pyqt6" in names and "qtpy" in names
    assert "pyqt5" not in names


def test_the_plugin_imports_qt_only_through_qtpy():
    package = Path(napari_srcnn.__file__).parent
    direct = re.compile(r"^\s*(from|import)\s+(PyQt5|PyQt6|PySide2|PySide6)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if direct.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders
