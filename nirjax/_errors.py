"""One line for a failure that happened inside a compiled run: an `eqx.error_if` check (a
capacity exceeded, a state that went non-finite) or the accelerator running out of memory."""

from __future__ import annotations

_PREFIX = "equinox.EquinoxRuntimeError: "


def runtime_message(e: BaseException) -> str | None:
    """The message of an `eqx.error_if` that fired (without Equinox's debugging advice, which
    names environment variables and is no help to a command-line user), or a one-line out of
    memory report; None for any other exception."""
    import equinox as eqx
    import jax

    if isinstance(e, eqx.EquinoxRuntimeError):
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith(_PREFIX):
                return ln[len(_PREFIX):]
        kept = [ln for ln in lines if not ln.startswith("Above is the stack")]
        return kept[0] if kept else "a runtime check failed"
    if isinstance(e, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(e):
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        return (f"out of memory while running ({first[:200]}); use smaller inputs, fewer "
                "samples per batch (--batch-size) or a smaller graph")
    return None
