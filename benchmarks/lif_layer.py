"""One Linear + LIF layer, timed side by side: nirjax, the JAX matmul-only bound, and the peers.

The network is the one of the usual SNN-library comparison: batch 16, 500 time steps, an
`N x N` dense layer feeding N leaky integrate-and-fire neurons. For nirjax it is built as a NIR
graph, `Input(N) -> Affine(N x N) -> LIF -> Output`, with `tau = 20 dt`, `r = tau / dt`,
`v_leak = 0`, `v_threshold = 1`, `v_reset = 0` and `dt = 1e-3`, and imported with
`nirjax.from_nir`. With nirjax's default forward-Euler step this is

    v[t] = 0.95 v[t-1] + (W x[t] + b),   z[t] = H(v[t] - 1),   v[t] <- 0 where z[t] = 1,

and every peer is configured to the same per-step arithmetic (decay 0.95, threshold 1,
reset to zero), each used the way its documentation uses it:

- `matmul`: the lower bound, the input matmul `(T*B, N) @ (N, N)` alone in JAX (forward), and
  the same matmul plus its weight gradient `x^T g` (forward + backward).
- `jax`: a hand-written pure-JAX layer (no library): the input matmul over the whole time axis
  once, then a `lax.scan` of the LIF update with a SuperSpike surrogate (the same arithmetic as
  nirjax's default); gradients w.r.t. W and b by plain autodiff. It shows what nirjax's graph
  machinery costs over code written by hand.
- `nirjax`: `jax.vmap(graph)` under `eqx.filter_jit`; backward is
  `eqx.filter_value_and_grad` of the spike sum with respect to the whole model. Forward +
  backward runs as `training.fit` runs a graph (`check_finite=False`; fit checks once per
  epoch); forward alone keeps the default per-step check.
- `spyx`: Spyx 1.0, `spyx.nn.Sequential(nnx.Linear, spyx.nn.LIF)` driven by `spyx.nn.run`
  (a `lax.scan` that applies the Linear inside every step), jitted as `spyx.bench` does.
- `snntorch`: snnTorch 1.0, `nn.Linear` + `snntorch.Leaky(beta=0.95, reset_mechanism="zero")`
  stepped in a Python loop over time, as its tutorials do.
- `norse`: Norse 1.1, `nn.Linear` + `norse.torch.LIFBoxCell` (Norse's LIF without a synaptic
  current, i.e. NIR's LIF: `v <- v + dt/tau (v_leak - v + i)`) stepped in a Python loop.

Method: every case (library x N x forward / forward+backward) runs in its own Python process;
each timed call is synchronised (`block_until_ready`; torch CPU is synchronous); the reported
time is the median of `--runs` timed calls after one warm-up call; JAX compile time
(`lower().compile()`) is reported separately and never timed. Peak memory: for JAX the compiled
executable's `memory_analysis()` (temporary buffers, arguments, outputs) and, on GPU, the device
allocator's peak; for every case the process's peak resident set (`ru_maxrss`) and its growth
from just before the data was built; for torch on GPU `torch.cuda.max_memory_allocated`.

    python benchmarks/lif_layer.py                      # CPU: N = 512, 1024, 2048
    python benchmarks/lif_layer.py --gpu                # GPU: N = 4096, 16384
    python benchmarks/lif_layer.py --checkpoint 25 50   # + gradient checkpointing at N = 2048
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH = 16
STEPS = 500
DT = 1e-3
TAU = 20 * DT
BETA = 1.0 - DT / TAU  # 0.95: the Euler decay of v per step
INPUT_RATE = 0.1  # Bernoulli rate of the input spikes
WEIGHT_SCALE = 1.5  # weights ~ N(0, (scale / sqrt(N))^2): a few percent of neurons fire per step

TAU_SYN = 10 * DT
ALPHA = 1.0 - DT / TAU_SYN  # 0.9: the Euler decay of the synaptic current (CubaLIF)
REC_SCALE = 0.5  # recurrent weights ~ N(0, (scale / sqrt(N))^2)

LAYERS = ("lif", "cubalif", "rlif")
IMPLS = ("matmul", "jax", "nirjax", "spyx", "snntorch", "norse")
PEERS = ("spyx", "snntorch", "norse")
MODES = ("fwd", "fwdbwd")
RESULT_TAG = "@@RESULT "
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------ helpers
def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _data(n: int, seed: int = 0):
    """Input spikes (B, T, N) and the dense weight (N_out, N_in) and bias, as numpy float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = (rng.random((BATCH, STEPS, n)) < INPUT_RATE).astype(np.float32)
    w = (rng.standard_normal((n, n)) * (WEIGHT_SCALE / np.sqrt(n))).astype(np.float32)
    b = np.zeros((n,), np.float32)
    return x, w, b


def _recurrent_weight(n: int, seed: int = 2):
    """The recurrent weight (N_out, N_in) of the `rlif` layer, numpy float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, n)) * (REC_SCALE / np.sqrt(n))).astype(np.float32)


def _median_times(call, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _atomic_write_json(path: Path, obj) -> None:
    from nirjax import atomic_path

    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


# ------------------------------------------------------------------------------ JAX cases
def _jax_setup(case: dict):
    import jax

    if case.get("precision"):
        jax.config.update("jax_default_matmul_precision", case["precision"])
    return jax


def _jax_memory(compiled, jax) -> dict:
    out = {}
    try:
        ma = compiled.memory_analysis()
        out.update(
            temp_mb=ma.temp_size_in_bytes / 2**20,
            argument_mb=ma.argument_size_in_bytes / 2**20,
            output_mb=ma.output_size_in_bytes / 2**20,
        )
    except Exception as e:  # noqa: BLE001 - not every backend reports it
        out["memory_analysis_error"] = f"{type(e).__name__}: {e}"
    try:
        stats = jax.devices()[0].memory_stats()
        if stats and stats.get("peak_bytes_in_use") is not None:
            out["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
    except Exception:  # noqa: BLE001
        pass
    return out


def _time_jax(fn, args, case, jax) -> dict:
    """AOT-compile `fn` (an eqx.filter_jit or jax.jit function) on `args`, then time it."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    inner = getattr(compiled, "compiled", compiled)  # equinox wraps jax's Compiled

    def call():
        return jax.block_until_ready(compiled(*args))

    t0 = time.perf_counter()
    out = call()
    first_s = time.perf_counter() - t0
    times = _median_times(call, case["runs"])
    return {"compile_s": compile_s, "first_call_s": first_s, "times_s": times,
            **_jax_memory(inner, jax), "_out": out}


def _nirjax_graph(n, w, b, execution, layer="lif", gradient=None):
    import nir
    import numpy as np

    import nirjax

    full = lambda v: np.full((n,), v, np.float32)  # noqa: E731
    if layer == "cubalif":  # I <- 0.9 I + x, v <- 0.95 v + I under Euler
        neuron = nir.CubaLIF(tau_syn=full(TAU_SYN), tau_mem=full(TAU), r=full(TAU / DT),
                             v_leak=full(0.0), v_threshold=full(1.0), v_reset=full(0.0),
                             w_in=full(TAU_SYN / DT))
    else:
        neuron = nir.LIF(tau=full(TAU), r=full(TAU / DT), v_leak=full(0.0),
                         v_threshold=full(1.0), v_reset=full(0.0))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n])}),
        "affine": nir.Affine(weight=w, bias=b),
        "lif": neuron,
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "affine"), ("affine", "lif"), ("lif", "output")]
    if layer == "rlif":  # the previous step's spikes through W_rec, summed with W x + b
        nodes["w_rec"] = nir.Linear(weight=_recurrent_weight(n))
        edges += [("lif", "w_rec"), ("w_rec", "lif")]
    graph = nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
    if gradient:
        graph = graph.with_options(gradient=gradient)
    if execution:
        graph = graph.with_execution(**execution)
    return graph


def case_matmul(case, x, w, b):
    """The bound: the input matmul alone (forward) and with its weight gradient `x^T g` for a
    fixed dense cotangent g (forward + backward; a loss with a constant gradient would let XLA
    replace `x^T g` by a column sum). XLA's CPU speed depends on the weight's layout, so both
    layouts are timed, `x @ W.T` with W (out, in) as nirjax stores it and `x @ Wt` with Wt
    (in, out), and the faster one is the bound."""
    jax = _jax_setup(case)
    import jax.numpy as jnp
    import numpy as np

    dtype = case.get("matmul_dtype") or "float32"
    xs = jnp.asarray(x.transpose(1, 0, 2).reshape(-1, x.shape[-1]), dtype)  # (T*B, N)
    weights = {"w_out_in": jnp.asarray(w, dtype), "w_in_out": jnp.asarray(w.T, dtype)}
    dots = {
        "w_out_in": lambda w, xs: jnp.dot(xs, w.T, preferred_element_type=jnp.float32),
        "w_in_out": lambda w, xs: jnp.dot(xs, w, preferred_element_type=jnp.float32),
    }
    g = jnp.asarray(np.random.default_rng(1).standard_normal((xs.shape[0], w.shape[0])),
                    jnp.float32)
    variants = {}
    for name, dot in dots.items():
        if case["mode"] == "fwd":
            fn, args = jax.jit(dot), (weights[name], xs)
        else:
            def loss(w, xs, g, dot=dot):
                return jnp.vdot(dot(w, xs), g)

            fn, args = jax.jit(jax.value_and_grad(loss)), (weights[name], xs, g)
        variants[name] = _time_jax(fn, args, case, jax)
        variants[name].pop("_out")
    best = min(variants, key=lambda k: statistics.median(variants[k]["times_s"]))
    res = dict(variants[best])
    res["layout"] = best
    res["variants"] = {k: {"median_s": statistics.median(v["times_s"]), "times_s": v["times_s"]}
                       for k, v in variants.items()}
    res["_out"] = None
    return res


def case_nirjax(case, x, w, b):
    jax = _jax_setup(case)
    import equinox as eqx
    import jax.numpy as jnp

    execution = case.get("execution")
    if case["mode"] == "fwdbwd":
        # Forward + backward is a training step: run it as training.fit does, without the
        # per-step finiteness check (fit checks the loss and parameters once per epoch);
        # `--execution '{"check_finite": true}'` times it with the check.
        execution = {"check_finite": False, **(execution or {})}
    graph = _nirjax_graph(x.shape[-1], w, b, execution, case.get("layer", "lif"),
                          case.get("gradient"))
    xs = jnp.asarray(x)
    # nirjax.simulate (batch chunks, sharding, progress bar) runs on the host around a jitted
    # core, so it is not what is timed here: jax.vmap(graph) is the same computation.
    def forward(model, xs):
        return jax.vmap(model)(xs)

    if case["mode"] == "fwd":
        fn = eqx.filter_jit(forward)
    else:
        def loss(model, xs):
            return jnp.sum(forward(model, xs))

        fn = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    res = _time_jax(fn, (graph, xs), case, jax)
    out = res.pop("_out")
    spikes = out if case["mode"] == "fwd" else None
    if spikes is not None:
        res["spike_rate"] = float(jnp.mean(spikes))
    else:
        res["spike_rate"] = float(out[0]) / (BATCH * STEPS * x.shape[-1])
    return res


def case_jax(case, x, w, b):
    jax = _jax_setup(case)
    import jax.numpy as jnp

    @jax.custom_jvp
    def spike(u):
        return (u > 0).astype(u.dtype)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        (u,), (du,) = primals, tangents
        return spike(u), du / (1.0 + 25.0 * jnp.abs(u)) ** 2  # SuperSpike, scale 25

    layer = case.get("layer", "lif")

    def forward(params, xt):  # xt: (T, B, N), time-major
        w, b, w_rec = params
        current = jnp.einsum("tbi,oi->tbo", xt, w) + b
        zero = jnp.zeros(current.shape[1:], current.dtype)

        def lif(v, i):
            v = BETA * v + i
            z = spike(v - 1.0)
            return v * (1.0 - z), z

        def cubalif(carry, i):
            syn, v = carry
            syn = ALPHA * syn + i
            v, z = lif(v, syn)
            return (syn, v), z

        def rlif(carry, i):
            v, z = carry
            v, z = lif(v, i + z @ w_rec.T)
            return (v, z), z

        step, init = {"lif": (lif, zero), "cubalif": (cubalif, (zero, zero)),
                      "rlif": (rlif, (zero, zero))}[layer]
        return jax.lax.scan(step, init, current)[1]

    params = (jnp.asarray(w), jnp.asarray(b), jnp.asarray(_recurrent_weight(x.shape[-1])))
    xt = jnp.asarray(x.transpose(1, 0, 2))
    if case["mode"] == "fwd":
        fn = jax.jit(forward)
    else:
        fn = jax.jit(jax.value_and_grad(lambda p, xt: jnp.sum(forward(p, xt))))
    res = _time_jax(fn, (params, xt), case, jax)
    out = res.pop("_out")
    res["spike_rate"] = (float(jnp.mean(out)) if case["mode"] == "fwd"
                         else float(out[0]) / (BATCH * STEPS * x.shape[-1]))
    return res


def case_spyx(case, x, w, b):
    jax = _jax_setup(case)
    import jax.numpy as jnp
    import spyx.nn as snn
    from flax import nnx

    n = x.shape[-1]
    rngs = nnx.Rngs(0)
    layer = case.get("layer", "lif")
    neuron = {"lif": lambda: snn.LIF((n,), beta=BETA, threshold=1.0, rngs=rngs),
              "cubalif": lambda: snn.CuBaLIF((n,), alpha=ALPHA, beta=BETA, threshold=1.0,
                                             rngs=rngs),
              "rlif": lambda: snn.RLIF((n,), beta=BETA, threshold=1.0, rngs=rngs)}[layer]()
    model = snn.Sequential(nnx.Linear(n, n, rngs=rngs), neuron)
    model.layers[0].kernel[...] = jnp.asarray(w.T)  # nnx.Linear computes x @ kernel
    model.layers[0].bias[...] = jnp.asarray(b)
    if layer == "rlif":  # RLIF computes spikes @ recurrent_w
        model.layers[1].recurrent_w[...] = jnp.asarray(_recurrent_weight(n).T)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    xs = jnp.asarray(x.transpose(1, 0, 2))  # Spyx is time-major: (T, B, N)

    def forward(params, xs):
        return snn.run(nnx.merge(graphdef, params, rest), xs)[0]

    if case["mode"] == "fwd":
        fn = jax.jit(forward)
    else:
        fn = jax.jit(jax.value_and_grad(lambda p, xs: jnp.sum(forward(p, xs))))
    res = _time_jax(fn, (params, xs), case, jax)
    out = res.pop("_out")
    res["spike_rate"] = (float(jnp.mean(out)) if case["mode"] == "fwd"
                         else float(out[0]) / (BATCH * STEPS * n))
    return res


# ------------------------------------------------------------------------------ torch cases
def _torch_setup(case):
    import torch

    dev = torch.device("cuda" if case["device"] == "gpu" else "cpu")
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    if dev.type == "cuda":
        tf32 = case.get("precision") in (None, "default", "tensorfloat32")
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return torch, dev


def _time_torch(step, case, torch, dev, n) -> dict:
    def call():
        out = step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    total = call()
    first_s = time.perf_counter() - t0
    times = _median_times(call, case["runs"])
    res = {"compile_s": None, "first_call_s": first_s, "times_s": times,
           "spike_rate": float(total) / (BATCH * STEPS * n)}
    if dev.type == "cuda":
        res["device_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return res


def _torch_run(case, x, fc, cell_step, init, torch, dev):
    n = x.shape[-1]
    xs = torch.as_tensor(x.transpose(1, 0, 2).copy(), device=dev)  # (T, B, N)
    params = list(fc.parameters())

    def forward():
        state = init()
        spikes = []
        for t in range(xs.shape[0]):
            z, state = cell_step(fc(xs[t]), state)
            spikes.append(z)
        return torch.stack(spikes)

    if case["mode"] == "fwd":
        def step():
            with torch.no_grad():
                return forward().sum().item()
    else:
        def step():
            for p in params:
                p.grad = None
            loss = forward().sum()
            loss.backward()
            return loss.item()

    return _time_torch(step, case, torch, dev, n)


def case_snntorch(case, x, w, b):
    torch, dev = _torch_setup(case)
    import snntorch

    n = x.shape[-1]
    fc = torch.nn.Linear(n, n).to(dev)
    with torch.no_grad():
        fc.weight.copy_(torch.as_tensor(w))
        fc.bias.copy_(torch.as_tensor(b))
    layer = case.get("layer", "lif")
    if layer == "cubalif":
        syn = snntorch.Synaptic(alpha=ALPHA, beta=BETA, threshold=1.0,
                                reset_mechanism="zero").to(dev)
        return _torch_run(case, x, fc, lambda cur, s: (lambda z, a, m: (z, (a, m)))(
            *syn(cur, *s)), syn.reset_mem, torch, dev)
    if layer == "rlif":
        rl = snntorch.RLeaky(beta=BETA, linear_features=n, threshold=1.0,
                             reset_mechanism="zero").to(dev)
        with torch.no_grad():
            rl.recurrent.weight.copy_(torch.as_tensor(_recurrent_weight(n)))
            rl.recurrent.bias.zero_()
        return _torch_run(case, x, fc, lambda cur, s: (lambda z, m: (z, (z, m)))(
            *rl(cur, *s)), rl.reset_mem, torch, dev)
    lif = snntorch.Leaky(beta=BETA, threshold=1.0, reset_mechanism="zero").to(dev)
    return _torch_run(case, x, fc, lambda cur, mem: lif(cur, mem), lif.reset_mem, torch, dev)


def case_norse(case, x, w, b):
    torch, dev = _torch_setup(case)
    import norse.torch as norse

    n = x.shape[-1]
    # LIFBox: v <- v + dt/tau (v_leak - v + i); nirjax's LIF adds dt/tau * r x with r = tau/dt,
    # so Norse's current is r (W x + b): the factor r is folded into the weights.
    r = TAU / DT
    fc = torch.nn.Linear(n, n).to(dev)
    with torch.no_grad():
        fc.weight.copy_(torch.as_tensor(w) * r)
        fc.bias.copy_(torch.as_tensor(b) * r)
    layer = case.get("layer", "lif")
    if layer == "cubalif":
        # LIFCell: v <- v + dt/tau_mem (v_leak - v + i), i <- i - dt/tau_syn i + input (the
        # old i drives v); nirjax's CubaLIF (r = tau_mem/dt, w_in = tau_syn/dt) adds x to I,
        # so Norse's input is r (W x + b).
        p = norse.LIFParameters(
            tau_syn_inv=torch.as_tensor(1.0 / TAU_SYN), tau_mem_inv=torch.as_tensor(1.0 / TAU),
            v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(1.0),
            v_reset=torch.as_tensor(0.0))
        cell = norse.LIFCell(p, dt=DT).to(dev)
        return _torch_run(case, x, fc, lambda cur, s: cell(cur, s), lambda: None, torch, dev)
    p = norse.LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(1.0 / TAU), v_leak=torch.as_tensor(0.0),
        v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(0.0),
    )
    cell = norse.LIFBoxCell(p, dt=DT).to(dev)
    if layer == "rlif":
        # Norse has no recurrent box cell: LIFBoxCell with the previous step's spikes through
        # an explicit nn.Linear (scaled by r like the input weights).
        rec = torch.nn.Linear(n, n, bias=False).to(dev)
        with torch.no_grad():
            rec.weight.copy_(torch.as_tensor(_recurrent_weight(n)) * r)
        params_rec = list(rec.parameters())
        fc.register_parameter("w_rec", params_rec[0])  # so its gradient is cleared each call

        def rstep(cur, s):
            z_prev, cs = s if s is not None else (torch.zeros_like(cur), None)
            z, cs = cell(cur + rec(z_prev), cs)
            return z, (z, cs)

        return _torch_run(case, x, fc, rstep, lambda: None, torch, dev)
    return _torch_run(case, x, fc, lambda cur, s: cell(cur, s), lambda: None, torch, dev)


CASES = {"matmul": case_matmul, "jax": case_jax, "nirjax": case_nirjax, "spyx": case_spyx,
         "snntorch": case_snntorch, "norse": case_norse}


def worker(case: dict) -> dict:
    """Run one case in this process and return its measurements."""
    rss0 = _maxrss_mb()
    x, w, b = _data(case["n"])
    res = CASES[case["impl"]](case, x, w, b)
    res.pop("_out", None)
    res["median_s"] = statistics.median(res["times_s"])
    res["maxrss_mb"] = _maxrss_mb()
    res["maxrss_growth_mb"] = res["maxrss_mb"] - rss0
    res["versions"] = _versions(case["impl"])
    return res


def _versions(impl) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    names = {"matmul": ["jax", "jaxlib"], "jax": ["jax", "jaxlib"],
             "nirjax": ["jax", "jaxlib", "equinox", "nirjax"],
             "spyx": ["jax", "jaxlib", "spyx", "flax"], "snntorch": ["torch", "snntorch"],
             "norse": ["torch", "norse"]}[impl]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


# ------------------------------------------------------------------------------ driver
def run_case(case: dict, timeout: float) -> dict:
    env = dict(os.environ)
    if case["device"] == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if case.get("threads"):
        threads = str(case["threads"])
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        if case["threads"] == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            res["process_wall_s"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _merge(case: dict, rounds: list[dict]) -> dict:
    """One case's result over its rounds (processes): all timed runs pooled for the median,
    the median compile time, the largest memory figures."""
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return {**case, **rounds[-1], "rounds": rounds}
    out = {**case, **ok[-1]}
    out["times_s"] = [t for r in ok for t in r["times_s"]]
    out["median_s"] = statistics.median(out["times_s"])
    for key in ("compile_s", "first_call_s"):
        vals = [r[key] for r in ok if r.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    for key in ("temp_mb", "argument_mb", "output_mb", "device_peak_mb", "maxrss_mb",
                "maxrss_growth_mb"):
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            out[key] = max(vals)
    out["rounds"] = [{k: r.get(k) for k in ("round", "median_s", "loadavg_after", "error")}
                     for r in rounds]
    return out


def _importable(impl: str) -> str | None:
    mod = {"matmul": "jax", "jax": "jax", "nirjax": "nirjax", "spyx": "spyx",
           "snntorch": "snntorch", "norse": "norse"}[impl]
    from importlib.util import find_spec

    return None if find_spec(mod) is not None else f"{mod} is not installed"


def _fmt_ms(s):
    return "-" if s is None else f"{1000 * s:9.1f}"


def _fmt_ratio(r):
    return "-" if r is None else f"{r:5.2f}"


def summarise(results: list[dict]) -> tuple[str, dict]:
    """One table per layer (the matmul bound, the input matmul alone, is shared), and the
    ratios as a dict by layer."""
    layers = list(dict.fromkeys(r.get("layer", "lif") for r in results if r["impl"] != "matmul"))
    bound = [r for r in results if r["impl"] == "matmul"]
    tables, ratios = [], {}
    for layer in layers or ["lif"]:
        rows = bound + [r for r in results
                        if r["impl"] != "matmul" and r.get("layer", "lif") == layer]
        table, ratios[layer] = _summarise_layer(rows)
        tables.append(f"[{LAYER_TITLES[layer]}]\n{table}")
    return "\n".join(tables), ratios


LAYER_TITLES = {"lif": "Linear + LIF", "cubalif": "Linear + CubaLIF",
                "rlif": "Linear + recurrent LIF (W_rec inside the scan)"}


def _summarise_layer(results: list[dict]) -> tuple[str, dict]:
    """The table of medians and ratios, and the ratios as a dict."""
    by = {}
    for r in results:
        by[(r["label"], r["n"], r["mode"])] = r
    sizes = sorted({r["n"] for r in results})
    labels = list(dict.fromkeys(r["label"] for r in results))
    lines = []
    ratios = {}
    head = (f"{'N':>6} {'impl':<22} {'fwd ms':>9} {'f+b ms':>9} {'compile s':>10} "
            f"{'temp MB':>9} {'rss MB':>8} {'/matmul f':>9} {'/matmul fb':>10} "
            f"{'peer/nirjax f':>13} {'peer/nirjax fb':>14}")
    lines += [head, "-" * len(head)]
    for n in sizes:
        def med(label, mode, n=n):
            r = by.get((label, n, mode))
            return r.get("median_s") if r and "error" not in r else None

        for label in labels:
            rows = [by.get((label, n, m)) for m in MODES]
            if not any(rows):
                continue
            impl, _, rest = label.partition(" ")
            # Compare like with like: "nirjax bf16" with "matmul bf16", "snntorch [highest]" with
            # "nirjax [highest]".
            rest_mm = "" if rest == "autodiff" else rest  # nirjax autodiff: the same bound
            mm_label = " ".join(filter(None, ["matmul", rest_mm]))
            nj_label = " ".join(filter(None, ["nirjax", rest]))
            f, fb = med(label, "fwd"), med(label, "fwdbwd")
            comp = [r.get("compile_s") for r in rows if r and r.get("compile_s") is not None]
            temp = [r.get("temp_mb") for r in rows if r and r.get("temp_mb") is not None]
            rss = [r.get("maxrss_mb") for r in rows if r and r.get("maxrss_mb") is not None]
            ratio_mm = {m: (med(label, m) / med(mm_label, m)
                            if med(label, m) and med(mm_label, m) else None) for m in MODES}
            ratio_peer = {m: (med(label, m) / med(nj_label, m)
                              if med(label, m) and med(nj_label, m) else None) for m in MODES}
            is_peer = impl in PEERS
            ratios.setdefault(str(n), {})[label] = {
                "over_matmul": ratio_mm, **({"over_nirjax": ratio_peer} if is_peer else {}),
            }
            errs = [r["error"] for r in rows if r and "error" in r]
            lines.append(
                f"{n:>6} {label:<22} {_fmt_ms(f):>9} {_fmt_ms(fb):>9} "
                f"{('/'.join(f'{c:.1f}' for c in comp) or '-'):>10} "
                f"{('/'.join(f'{t:.0f}' for t in temp) or '-'):>9} "
                f"{(f'{max(rss):.0f}' if rss else '-'):>8} "
                f"{_fmt_ratio(ratio_mm['fwd']):>9} {_fmt_ratio(ratio_mm['fwdbwd']):>10} "
                f"{(_fmt_ratio(ratio_peer['fwd']) if is_peer else ''):>13} "
                f"{(_fmt_ratio(ratio_peer['fwdbwd']) if is_peer else ''):>14}"
                + (f"   ERROR: {errs[0]}" if errs else "")
            )
        fastest = {}
        for m in MODES:
            peers = [(ratios[str(n)][lb]["over_nirjax"][m], lb) for lb in ratios.get(str(n), {})
                     if "over_nirjax" in ratios[str(n)][lb]
                     and ratios[str(n)][lb]["over_nirjax"][m] is not None]
            if peers:
                fastest[m] = min(peers)
        if fastest:
            ratios[str(n)]["fastest_peer_over_nirjax"] = {m: v[0] for m, v in fastest.items()}
            lines.append(f"{n:>6} fastest peer / nirjax: " + ", ".join(
                f"{m} {v[0]:.2f} ({v[1]})" for m, v in fastest.items()))
        lines.append("")
    return "\n".join(lines), ratios


def _checkpoint_summary(results: list[dict], n: int) -> tuple[str, dict]:
    plain = next((r for r in results if r["label"] == "nirjax" and r["mode"] == "fwdbwd"
                  and r["n"] == n and "error" not in r), None)
    lines, out = [], {}
    for r in results:
        if not r["label"].startswith("nirjax checkpoint"):
            continue
        if "error" in r or plain is None:
            lines.append(f"{r['label']}: {r.get('error', 'no plain nirjax result')}")
            continue
        mem = (r["temp_mb"] / plain["temp_mb"]
               if r.get("temp_mb") is not None and plain.get("temp_mb") else None)
        tim = r["median_s"] / plain["median_s"]
        out[r["label"]] = {"temp_mb": r.get("temp_mb"), "plain_temp_mb": plain.get("temp_mb"),
                           "temp_ratio": mem, "time_ratio": tim}
        nan = float("nan")
        lines.append(
            f"{r['label']:<24} temp {r.get('temp_mb', nan):8.1f} MB vs plain "
            f"{plain.get('temp_mb', nan):8.1f} MB (ratio {mem or nan:.3f}; target <= 0.30)   "
            f"time {1000 * r['median_s']:.0f} vs {1000 * plain['median_s']:.0f} ms "
            f"(ratio {tim:.3f}; target <= 1.25)"
        )
    return "\n".join(lines), out


def _machine() -> dict:
    info = {"command": "python " + " ".join(sys.argv),
            "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())}
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true",
                    help="run on the GPU (JAX and torch), default sizes 4096 and 16384")
    ap.add_argument("--sizes", type=int, nargs="+", help="N values (default: 512 1024 2048 on "
                    "CPU, 4096 16384 on GPU)")
    ap.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    ap.add_argument("--layers", nargs="+", choices=LAYERS, default=["lif"],
                    help="lif: Linear + LIF (default); cubalif: Linear + CubaLIF; rlif: Linear + "
                    "LIF with a recurrent Linear (a cycle). The matmul bound is the input "
                    "matmul alone for all three")
    ap.add_argument("--full", action="store_true",
                    help="the table of the README: lif at N = 256 512 1024 2048 (every impl, "
                    "forward and forward+backward, plus nirjax under gradient='autodiff'), "
                    "cubalif and rlif at N = 1024 2048 (forward+backward)")
    ap.add_argument("--autodiff", action="store_true",
                    help="also time nirjax with with_options(gradient='autodiff') (plain "
                    "autodiff of the neuron scans) beside the default derived reverse pass")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--runs", type=int, help="timed runs per case (default 7 for N <= 1024, "
                    "5 above; at least 3)")
    ap.add_argument("--precision", action="append", default=None,
                    help="JAX default matmul precision(s) to run the JAX cases under (e.g. "
                    "highest = fp32, tensorfloat32, default); may repeat. Torch follows it on GPU "
                    "(TF32 allowed unless 'highest').")
    ap.add_argument("--bf16", action="store_true", help="also time the matmul bound in bfloat16 "
                    "(fp32 accumulation) and nirjax with with_execution(matmul_dtype='bfloat16')")
    ap.add_argument("--execution", type=json.loads, default=None,
                    help="JSON dict of Graph.with_execution options for the nirjax cases")
    ap.add_argument("--checkpoint", type=int, nargs="*", default=None, metavar="K",
                    help="also time nirjax forward+backward with with_execution(checkpoint=K) "
                    "at N = 2048 (CPU) / the largest N (GPU) (default K: 25 50 100)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per case (torch.set_num_threads; 1 also makes XLA's CPU "
                    "backend single-threaded); default: each library's own default")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every case's process this many times, round-robin over the cases, "
                    "and pool the timed runs (spreads a changing machine load over all cases)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds: launch no new case after this (the rest are marked skipped)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    ap.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/"
                    "lif_layer_{cpu,gpu}.json)")
    ap.add_argument("--report", type=Path, metavar="JSON",
                    help="print the table of an earlier run's JSON and exit")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.report:
        doc = json.loads(args.report.read_text())
        m = doc.get("machine", {})
        print(f"{args.report}: {m.get('when_utc')}, {m.get('cpu', '')}, load average "
              f"{m.get('loadavg_start')} -> {m.get('loadavg_end')}\n")
        main_rows = [r for r in doc["results"] if not r["label"].startswith("nirjax checkpoint")]
        print(summarise(main_rows)[0])
        ck = [r for r in doc["results"] if r["label"].startswith("nirjax checkpoint")]
        if ck:
            print("Gradient checkpointing, forward + backward:\n"
                  + _checkpoint_summary(doc["results"], ck[0]["n"])[0])
        return 0

    if args.case:
        case = json.loads(args.case)
        print(RESULT_TAG + json.dumps(worker(case)), flush=True)
        return 0

    device = "gpu" if args.gpu else "cpu"
    sizes = args.sizes or ([4096, 16384] if args.gpu else [512, 1024, 2048])
    precisions = args.precision or [None]
    out_path = args.out or HERE / "results" / f"lif_layer_{device}.json"

    missing = {impl: why for impl in args.impls if (why := _importable(impl))}
    for impl, why in missing.items():
        print(f"skipping {impl}: {why} (pip install -e '.[bench]')", file=sys.stderr)

    cases = []
    plan = [(layer, sizes, args.modes, args.impls) for layer in args.layers]
    if args.full:
        big = [n for n in (1024, 2048) if not args.sizes or n in args.sizes]
        plan = [("lif", args.sizes or [256, 512, 1024, 2048], args.modes, args.impls),
                ("cubalif", big, ["fwdbwd"], args.impls),
                ("rlif", big, ["fwdbwd"], args.impls)]
        args.autodiff = True
    for layer, layer_sizes, modes, impls in plan:
        for n in layer_sizes:
            runs = max(3, args.runs or (7 if n <= 1024 else 5))
            for prec in precisions:
                suffix = f" [{prec}]" if prec else ""
                for impl in impls:
                    if impl in missing or (impl == "matmul" and layer != plan[0][0]):
                        continue
                    for mode in modes:
                        base = {"impl": impl, "n": n, "mode": mode, "device": device,
                                "runs": runs, "precision": prec, "layer": layer}
                        if impl == "nirjax":
                            base.update(execution=args.execution)
                        cases.append({**base, "label": impl + suffix})
                        if impl == "nirjax" and args.autodiff and mode == "fwdbwd":
                            cases.append({**base, "gradient": "autodiff",
                                          "label": "nirjax autodiff" + suffix})
    for n in sizes:
        runs = max(3, args.runs or (7 if n <= 1024 else 5))
        if args.bf16:  # bf16 operands, fp32 accumulation: independent of --precision
            for mode in args.modes:
                cases.append({"impl": "matmul", "n": n, "mode": mode, "device": device,
                              "runs": runs, "precision": None, "matmul_dtype": "bfloat16",
                              "label": "matmul bf16"})
                if "nirjax" not in missing:
                    ex = {**(args.execution or {}), "matmul_dtype": "bfloat16"}
                    cases.append({"impl": "nirjax", "n": n, "mode": mode, "device": device,
                                  "runs": runs, "precision": None, "execution": ex,
                                  "label": "nirjax bf16"})
    ckpt_cases = []
    if args.checkpoint is not None:
        n_ck = max(sizes) if args.gpu else 2048
        for k in args.checkpoint or [25, 50, 100]:
            ckpt_cases.append({"impl": "nirjax", "n": n_ck, "mode": "fwdbwd", "device": device,
                               "runs": 5, "precision": None,
                               "execution": {**(args.execution or {}), "checkpoint": k},
                               "label": f"nirjax checkpoint={k}"})
        if not any(c["impl"] == "nirjax" and c["n"] == n_ck and c["mode"] == "fwdbwd"
                   and not c.get("execution") and c.get("precision") is None for c in cases):
            ckpt_cases.insert(0, {"impl": "nirjax", "n": n_ck, "mode": "fwdbwd",
                                  "device": device, "runs": 5, "precision": None,
                                  "execution": args.execution,
                                  "label": "nirjax"})

    machine = _machine()
    results = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **k):
            return x
    if ckpt_cases:  # right after the main cases of that N, so a cut-short run still has them
        at = max((i + 1 for i, c in enumerate(cases) if c["n"] == ckpt_cases[0]["n"]), default=0)
        cases[at:at] = ckpt_cases
    for case in cases:
        case["threads"] = args.threads
    t_start = time.perf_counter()
    per_case: list[list[dict]] = [[] for _ in cases]
    results = []
    jobs = [(r, i) for r in range(args.rounds) for i in range(len(cases))]
    for rnd, i in tqdm(jobs, desc="cases", unit="case"):
        case = cases[i]
        if args.budget is not None and time.perf_counter() - t_start > args.budget:
            res = {"error": f"skipped: --budget {args.budget:.0f} s spent"}
        else:
            res = run_case(case, args.timeout)
        per_case[i].append({**res, "round": rnd, "loadavg_after": os.getloadavg()})
        results = [_merge(c, rs) for c, rs in zip(cases, per_case) if rs]
        doc = {"benchmark": "lif_layer", "batch": BATCH, "steps": STEPS, "dt": DT, "tau": TAU,
               "machine": machine, "results": results}
        _atomic_write_json(out_path, doc)  # after every case: a partial run keeps its numbers

    table, ratios = summarise([r for r in results
                               if not r["label"].startswith("nirjax checkpoint")])
    machine["loadavg_end"] = os.getloadavg()
    doc = {"benchmark": "lif_layer", "batch": BATCH, "steps": STEPS, "dt": DT, "tau": TAU,
           "machine": machine, "results": results, "ratios": ratios}
    print(f"\nLinear + LIF layer, batch {BATCH}, {STEPS} steps, {device}; median of timed runs "
          f"(compile excluded); load average {machine.get('loadavg_start')} -> "
          f"{machine['loadavg_end']}")
    print("/matmul: time over the JAX matmul-only bound; peer/nirjax: > 1 means nirjax is faster."
          " temp MB: XLA temporaries (fwd/f+b); rss MB: peak process RSS.\n")
    print(table)
    if ckpt_cases:
        ck_table, ck = _checkpoint_summary(results, ckpt_cases[0]["n"])
        doc["checkpoint"] = ck
        print("Gradient checkpointing, forward + backward:\n" + ck_table)
    _atomic_write_json(out_path, doc)
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
