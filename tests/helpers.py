"""Shared test utilities."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

CONFORMANCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "conformance")


def conformance(*parts: str) -> str:
    """Path of a file in ../shared/conformance, skipping the test if the folder is absent."""
    path = os.path.normpath(os.path.join(CONFORMANCE, *parts))
    if not os.path.exists(path):
        pytest.skip(f"conformance material not present: {path} (expected beside the checkout)")
    return path


def tree_allclose(a, b, rtol=1e-5, atol=1e-6) -> bool:
    """Whether two pytrees have the same structure and allclose leaves."""
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    if ta != tb:
        return False
    return all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol) for x, y in zip(la, lb)
    )


def spikes(key, shape, p=0.2) -> jax.Array:
    """Random Bernoulli(p) spike input as float32."""
    return (jax.random.uniform(key, shape) < p).astype(jnp.float32)


def paper_lif_graph() -> nir.NIRGraph:
    """The NIR paper's single-LIF graph (lif_norse.nir's nodes and parameters)."""
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([1])),
            "0": nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0])),
            "1": nir.LIF(tau=np.array([0.0025]), r=np.array([1.0]), v_leak=np.array([0.0]),
                         v_threshold=np.array([0.1]), v_reset=np.array([0.0])),
            "output": nir.Output(np.array([1])),
        },
        edges=[("input", "0"), ("0", "1"), ("1", "output")],
    )
