#!/usr/bin/env bash
# CI: build the wheel, install it into a fresh venv (no checkout on the path, no network) and check that the
# embedded gallery came with it: `fastnst styles` lists it and `fastnst stylize` paints with it.
# Usage: .ci/wheel_check.sh [PYTHON]   (PYTHON builds the wheel; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${1:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)
work=$(mktemp -d /tmp/fastnst-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$PY" -m pip wheel -q --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/fastnst-*.whl)
echo "wheel: $(basename "$wheel"), $(du -m "$wheel" | cut -f1) MB ($(stat -c %s "$wheel") bytes)"

python3 -m venv "$work/venv"
# The pins keep the install to what requirements.txt already put in pip's cache (torch comes from there).
"$work/venv/bin/pip" install -q -c requirements.txt "$wheel"

cd "$work"  # nothing of the checkout is importable from here
unset PYTHONPATH FASTNST_STYLES_DIR
export HF_HUB_OFFLINE=1 HF_HOME="$work/hf"
bin=$work/venv/bin
"$bin/python" - "$REPO" <<'PY'
import sys
import fastnst, fastnst.styles
repo = sys.argv[1]
assert not fastnst.__file__.startswith(repo), f"fastnst imported from the checkout: {fastnst.__file__}"
assert str(fastnst.styles.STYLES_DIR).startswith(sys.prefix), f"gallery outside the venv: {fastnst.styles.STYLES_DIR}"
assert (fastnst.styles.STYLES_DIR / "family" / "model.safetensors").is_file(), "styles/family is missing"
import training.fit  # reads training/recipes/fit.json, package data
recipe = training.fit.fit_recipe_file()
assert str(recipe).startswith(sys.prefix) and recipe.is_file(), f"recipes outside the venv: {recipe}"
assert training.fit.default_image_steps() > 0
print("installed:", fastnst.__file__, "gallery:", fastnst.styles.STYLES_DIR)
PY
listed=$("$bin/fastnst" styles)
echo "$listed"
count=$(grep -cE "\((full, )?light\)$" <<<"$listed" || true)  # every style ships a light (CPU) network
[ "$count" -eq "$(ls -d "$REPO"/styles/*/style.json | wc -l)" ] || { echo "expected every gallery style, got $count"; exit 1; }
"$bin/fastnst" stylize "$REPO/examples/cat.jpg" --style starry-night --max-side 256 -o "$work/out.jpg"
"$bin/python" -c "from PIL import Image; import sys; im = Image.open(sys.argv[1]); assert im.width > 0; print('painted', im.size)" "$work/out.jpg"
echo "wheel check passed in $(( $(date +%s) - start )) s"
