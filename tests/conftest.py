import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SPREID_THREADS", "2")


@pytest.fixture
def root() -> Path:
    "The repository root."
    return ROOT
