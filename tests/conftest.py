"""Fixtures shared by every test: the shared data folder and the real vision pipeline."""

from __future__ import annotations

import pytest

from appliance.paths import shared_dir


def shared_or_skip(*parts: str):
    """A path under $APPLIANCE_SHARED (default ../shared), or skip with a clear message when it is absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} not found: set APPLIANCE_SHARED to the folder holding data/ and models/")
    return path


@pytest.fixture(scope="session")
def lfw_dir():
    return shared_or_skip("data", "lfw")


@pytest.fixture(scope="session")
def crowd_dir():
    return shared_or_skip("data", "crowd")


@pytest.fixture(scope="session")
def nasa_dir():
    return shared_or_skip("data", "nasa")


@pytest.fixture(scope="session")
def pipeline():
    """The real pipeline on the real installed models (make models), default configuration."""
    from appliance.config import load_config
    from appliance.errors import ModelError
    from appliance.vision.pipeline import FacePipeline

    try:
        return FacePipeline.from_config(load_config())
    except ModelError as e:
        pytest.fail(f"models not installed ({e}); run `make models`")

