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
