#!/usr/bin/env bash
# Build sdist + wheel, check them, install the wheel into a fresh venv WITHOUT the source
# tree, and run it: npe2 validate, --version, models, and upscale a bundled sample.
# Usage: scripts/check_package.sh [WORKDIR]   (tox -e package calls it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
rm -rf "$work/dist" "$work/venv" "$work/run"
mkdir -p "$work/run"
python -m build --sdist --wheel --outdir "$work/dist" "$root"
python -m twine check --strict "$work/dist"/*
wheel=$(ls "$work/dist"/*.whl)
unzip -l "$wheel" | grep -E "napari.yaml|weights/.*safetensors|sample_data/" | awk '{print $4}'
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q torch==2.13.0 "$wheel"
cd "$work/run"   # no source tree here
"$work/venv/bin/npe2" validate napari-srcnn
"$work/venv/bin/napari-srcnn" --version
"$work/venv/bin/napari-srcnn" models
sample=$("$work/venv/bin/python" -c "from napari_srcnn.samples import sample_path; print(sample_path('photo-lr'))")
hr=$("$work/venv/bin/python" -c "from napari_srcnn.samples import sample_path; print(sample_path('photo-hr'))")
"$work/venv/bin/napari-srcnn" upscale "$sample" -o upscaled.png --scale 3 --reference "$hr"
test -s upscaled.png
echo "package check passed"
