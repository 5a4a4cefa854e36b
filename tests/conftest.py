"""Shared test settings: quiet TensorFlow, Agg plots, and the path to ../shared/data."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (real faces and videos, read-only)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: CI clones the repo with shared/ beside it")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_image_store(tmp_path_factory):
    """The smoke-scale procedural image benchmark, built once per test session."""
    from dfdetect import experiment
    from dfdetect.scales import get_scale

    root = tmp_path_factory.mktemp("bench")
    return experiment.benchmark_store("images", "procedural", get_scale("smoke"), seed=0,
                                      holdout_method="identity_swap", root=root)


@pytest.fixture(scope="session")
def smoke_video_store(tmp_path_factory):
    """The smoke-scale procedural video benchmark, built once per test session."""
    from dfdetect import experiment
    from dfdetect.scales import get_scale

    root = tmp_path_factory.mktemp("bench")
    return experiment.benchmark_store("videos", "procedural", get_scale("smoke"), seed=0,
                                      holdout_method="identity_swap", root=root)
