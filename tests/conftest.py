import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import custom_neurons  # noqa: E402,F401 - registers the two neurons defined outside nirjax

# Strict dtype promotion: mixing float32 state with float64 numpy values is a bug, not a cast.
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    yield


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (`CI=true`, as `.ci/run` runs) a peer that is not installed fails its interop
    tests instead of skipping them: CI installs every peer, so a skip there is a broken
    install, not a missing optional dependency."""
    outcome = yield
    report = outcome.get_result()
    if (os.environ.get("CI") == "true" and report.skipped and "interop" in item.keywords
            and "not installed" in str(report.longrepr)):
        report.outcome = "failed"
        report.longrepr = f"CI installs every peer, but: {report.longrepr}"
