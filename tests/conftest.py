"""Shared fixtures: paths to the real data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real images with ground truth); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def rst_path(shared_data: Path) -> Path:
    """RootSystemTracker's 2D+t RSML (RSML 1.4) in ../shared/data."""
    path = shared_data / "rsml-2dt" / "61_graph_expertized.rsml"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the 2D+t RSML of RootSystemTracker is not in the shared data")
    return path


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared 2-core machine, two threads spin against other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
