#!/usr/bin/env bash
# The release check, as a user gets the package: build sdist + wheel (the wheel is built
# FROM the sdist), twine check, look inside the wheel, install it into a fresh venv and run
# it from a folder outside the source tree: npe2 validate, --version, models, and the
# README's first command without its install step (it upscales the bundled sample with
# --reference; SRCNN must beat bicubic).
# No napari and no Qt are installed: the CLI is headless and `npe2 validate` needs npe2 only.
# Usage: scripts/check_package.sh [WORKDIR]   (`tox -e package` calls it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
py=${PYTHON:-python}
step() { printf '\n== %s\n' "$*"; }

rm -rf "$work/dist" "$work/venv"
mkdir -p "$work"

step "build sdist + wheel"
"$py" -m build --outdir "$work/dist" "$root"
sdist=$(ls "$work/dist"/napari_srcnn-*.tar.gz)
wheel=$(ls "$work/dist"/napari_srcnn-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
src_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/src/napari_srcnn/__init__.py")
[ "$version" = "$src_version" ] || { echo "wheel version $version != __version__ $src_version" >&2; exit 1; }
grep -q "^## \[$version\]" "$root/CHANGELOG.md" || { echo "CHANGELOG.md has no section for $version" >&2; exit 1; }

step "twine check"
"$py" -m twine check --strict "$work/dist"/*

step "wheel contents: manifest, sample data, weights"
"$py" - "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
need = {
    "manifest": [n for n in names if n == "napari_srcnn/napari.yaml"],
    "sample data": [n for n in names if n.startswith("napari_srcnn/sample_data/") and not n.endswith((".py", "/"))],
    "weights": [n for n in names if n.startswith("napari_srcnn/weights/") and n.endswith(".safetensors")],
    "licence": [n for n in names if n.endswith(".dist-info/licenses/LICENSE")],
    "entry points": [n for n in names if n.endswith(".dist-info/entry_points.txt")],
}
for what, found in need.items():
    print(f"{what:>13}: {', '.join(found) or 'MISSING'}")
missing = [what for what, found in need.items() if not found]
stray = [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".ckpt.safetensors"))]
if stray:
    print("stray files in the wheel:", *stray, sep="\n  ")
members = tarfile.open(sdist).getnames()
print(f"{'sdist':>13}: {len(members)} files, tests included: {any('/tests/' in m for m in members)}")
sys.exit(1 if missing or stray else 0)
EOF

step "fresh venv with the wheel (no source tree, no napari, no Qt)"
"$py" -m venv "$work/venv"
bin="$work/venv/bin"
"$bin/python" -m pip install -q torch==2.13.0 "$wheel" npe2
run=$(mktemp -d)   # outside the source tree
cd "$run"
"$bin/python" -c "import napari_srcnn, sys; p = napari_srcnn.__file__; print('imported from', p); sys.exit('$work/venv' not in p)"
"$bin/python" -c "import importlib.util as u; import sys; sys.exit(any(u.find_spec(m) is not None for m in ('napari', 'PyQt6', 'PyQt5', 'PySide6')))" \
  || { echo "napari or Qt got installed: the base install must stay headless" >&2; exit 1; }

step "npe2 validate napari-srcnn"
"$bin/npe2" validate napari-srcnn

step "napari-srcnn --version / models"
out=$("$bin/napari-srcnn" --version)
echo "$out"
[ "$out" = "napari-srcnn $version" ] || { echo "expected 'napari-srcnn $version'" >&2; exit 1; }
"$bin/napari-srcnn" models

step "the README's first command, minus its install step"
# (the same extraction as tests/test_package.py: first ```bash block of "## Quick start")
readme_cmd=$("$py" -c '
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
block = re.findall(r"```(?:bash|sh)\n(.*?)```", section, flags=re.S)[0]
command = " ".join(line.rstrip("\\").strip() for line in block.strip().splitlines())
print(command.split(" && ", 1)[1])  # drop the `python3 -m pip install ... .` part
' "$root/README.md")
echo "\$ $readme_cmd"
PATH="$bin:$PATH" bash -c "$readme_cmd" | tee upscale.log
test -s photo_x3.png
"$bin/python" - upscale.log <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"bicubic (-?[\d.]+) dB, SRCNN (-?[\d.]+) dB", text)
if not m:
    sys.exit("no 'PSNR vs ...: bicubic X dB, SRCNN Y dB' line")
bicubic, srcnn = map(float, m.groups())
print(f"SRCNN - bicubic = {srcnn - bicubic:+.2f} dB")
sys.exit(0 if srcnn > bicubic else "SRCNN does not beat bicubic on the bundled sample")
EOF
cd / && rm -rf "$run"
echo
echo "package check passed: napari-srcnn $version"
