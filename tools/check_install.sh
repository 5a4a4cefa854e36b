#!/usr/bin/env bash
# Proof that `pip install .[cpu]` gives a working dfdetect, for CI: a fresh virtualenv,
# the package and its dependencies from PyPI (minutes: TensorFlow is ~600 MB), then the
# command from outside the checkout: --version, every --help, and a video scored by the
# shipped default detector. tests/test_packaging.py does the same offline in seconds
# (the wheel into an empty venv, dependencies borrowed from the running environment).
#
#   tools/check_install.sh [VIDEO] [EXTRA]     # EXTRA: cpu (default) or gpu
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
video=${1:-$root/../shared/data/videos/closeup_d10.mp4}
extra=${2:-cpu}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Build from a copy: setuptools writes build/ beside the sources.
mkdir "$work/src"
cp -r "$root/pyproject.toml" "$root/README.md" "$root/dfdetect" "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "$work/src[$extra]"
cd "$work"  # so that `import dfdetect` can only find the installed package
dfdetect="$work/venv/bin/dfdetect"
"$dfdetect" --version
for command in predict explain evaluate train data; do
    "$dfdetect" "$command" --help > /dev/null
done
"$work/venv/bin/python" -c 'import dfdetect, sys; sys.exit(not dfdetect.__file__.startswith(sys.prefix))'
if [ -f "$video" ]; then
    "$dfdetect" predict "$video" --frames 2
else
    echo "check_install: no video at $video; scoring skipped" >&2
fi
echo "check_install: ok"
