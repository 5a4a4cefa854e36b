"""`pip install .[cpu]` gets a working package: the wheel declares what it needs.

A fresh-venv install of TensorFlow takes minutes, too slow for every test run; what can
break that install cheaply is the metadata, so the wheel is built (no dependencies, no
isolation: about a second) from a copy of the package and its METADATA checked.
"""

import re
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
                    ignore=shutil.ignore_patterns("__pycache__", "*.keras", "*.tflite*"))
    (src / "dfdetect" / "weights").mkdir(exist_ok=True)
    for name in ("default.keras", "default.tflite", "default.tflite.json"):
        (src / "dfdetect" / "weights" / name).write_bytes(b"stand-in")
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
            "keras", "dlib-bin", "face-recognition-models", "setuptools",
            "ai-edge-litert"} <= names
    # face-recognition would make pip compile dlib for ~10 minutes: face_api replaces it
    assert "face-recognition" not in names and "dlib" not in names
    assert 'tensorflow-cpu>=2.16; extra == "cpu"' in requires
    assert 'tensorflow[and-cuda]>=2.16; extra == "gpu"' in requires
    assert any(r.startswith("pytest") and 'extra == "dev"' in r for r in requires)


def test_wheel_ships_the_code_the_default_detector_and_the_command(wheel):
    names = wheel.namelist()
    assert "dfdetect/weights/default.keras" in names
    # its LiteRT twin, which predict starts faster with
    assert {"dfdetect/weights/default.tflite", "dfdetect/weights/default.tflite.json"} <= set(names)
    assert "dfdetect/data/face_api.py" in names and "dfdetect/cli.py" in names
    assert "dfdetect/synthetic/benchmark.py" in names  # `dfdetect data build`
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


# ---------------------------------------------------------------- a fresh environment

SHARED_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "closeup_d10.mp4"


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory) -> Path:
    """The wheel (real default detector included) installed into a new, empty venv.

    Offline and in seconds: the venv gets no pip and no packages of its own; the wheel
    goes in with ``--no-deps``, and its dependencies are read from the running
    environment's site-packages through a ``.pth`` line, which adds them to ``sys.path``
    but does not run that environment's own ``.pth`` hooks, so this checkout's editable
    dfdetect stays invisible and ``import dfdetect`` can only find the installed wheel.
    CI's ``tools/check_install.sh`` does the real thing (``pip install .[cpu]`` from
    PyPI into a fresh venv).
    """
    import site
    import venv

    src = tmp_path_factory.mktemp("src-full")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dfdetect", src / "dfdetect",
                    ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheel-full")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(src)], check=True, capture_output=True)
    (whl,) = wheels.glob("dfdetect-*.whl")
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--ignore-installed", "--no-index", str(whl)],
                   check=True, capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "zz_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    return env_dir


def _run(env_dir: Path, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(env_dir / "bin" / "dfdetect"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=env_dir)


def test_installed_command_reports_its_version_and_help(fresh_install):
    where = subprocess.run([str(fresh_install / "bin" / "python"), "-c",
                            "import dfdetect; print(dfdetect.__file__)"],
                           capture_output=True, text=True, check=True,
                           cwd=fresh_install).stdout  # not this checkout's folder
    assert where.startswith(str(fresh_install)), where  # the wheel, not this checkout
    version = _run(fresh_install, "--version")
    assert version.returncode == 0 and dfdetect.__version__ in version.stdout
    for command in ("predict", "explain", "evaluate", "train", "data"):
        shown = _run(fresh_install, command, "--help")
        assert shown.returncode == 0 and "usage: dfdetect" in shown.stdout, shown.stderr


@pytest.mark.skipif(not SHARED_VIDEO.is_file(), reason="needs ../shared/data/videos")
def test_installed_command_scores_a_video_with_the_shipped_detector(fresh_install):
    # through the installed LiteRT twin: an error if it is missing or stale
    scored = _run(fresh_install, "predict", str(SHARED_VIDEO), "--frames", "2",
                  "--runtime", "litert", timeout=300)
    assert scored.returncode == 0, scored.stderr
    assert re.search(r"\b(FAKE|REAL)\b", scored.stdout), scored.stdout


def test_experiments_are_not_in_the_wheel(wheel):
    """The wheel is the library, the command and the shipped detector. The experiment
    scripts reproduce the papers into a checkout's results/ and Makefile, so they are run
    from a clone (README, Quick start), not installed."""
    assert not [n for n in wheel.namelist() if n.startswith("experiments/")]
