"""`pip install .[cpu]` gets a working package: the wheel declares what it needs.

A fresh-venv install of TensorFlow takes minutes, too slow for every test run; what can
break that install cheaply is the metadata, so the wheel is built (no dependencies, no
isolation: about a second) from a copy of the package and its METADATA checked.
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import dfdetect

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    # A copy: setuptools writes build/ beside the sources, and the repo's build/ is in use.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dfdetect", src / "dfdetect",
                    ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    (src / "dfdetect" / "weights").mkdir(exist_ok=True)
    (src / "dfdetect" / "weights" / "default.keras").write_bytes(b"stand-in")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True)
    (path,) = out.glob("dfdetect-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode()


def test_wheel_declares_runtime_dependencies_and_extras(wheel):
    meta = _metadata(wheel)
    assert f"Version: {dfdetect.__version__}" in meta
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]
    names = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].split("[")[0]
             for r in requires}
    assert {"numpy", "opencv-python-headless", "scikit-learn", "matplotlib", "tqdm", "skops",
            "keras", "dlib-bin", "face-recognition-models", "setuptools"} <= names
    # face-recognition would make pip compile dlib for ~10 minutes: face_api replaces it
    assert "face-recognition" not in names and "dlib" not in names
    assert 'tensorflow-cpu>=2.16; extra == "cpu"' in requires
    assert 'tensorflow[and-cuda]>=2.16; extra == "gpu"' in requires
    assert any(r.startswith("pytest") and 'extra == "dev"' in r for r in requires)


def test_wheel_ships_the_code_the_default_detector_and_the_command(wheel):
    names = wheel.namelist()
    assert "dfdetect/weights/default.keras" in names
    assert "dfdetect/data/face_api.py" in names and "dfdetect/cli.py" in names
    (entry,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "dfdetect = dfdetect.cli:main" in wheel.read(entry).decode()


def test_requirements_lock_pins_every_runtime_dependency():
    """requirements.txt (what the Makefile installs) covers pyproject's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.txt").read_text().lower()
    for requirement in project["dependencies"]:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].strip().lower()
        if name == "dlib-bin":  # pulled by the tools/dlib-shim line
            assert "./tools/dlib-shim" in lock
            continue
        assert f"\n{name}" in lock, f"{name} is not pinned in requirements.txt"
