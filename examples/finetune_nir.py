"""Fine-tune an imported NIR graph: the architecture and the starting parameters come from a
.nir file; the result is written back as .nir.

    python examples/finetune_nir.py [FILE.nir] [--out runs/example-finetune]

Without FILE.nir, a graph is first written to stand in for one exported by another tool. The
fine-tuning trains the weights and biases and, here, also the membrane time constants of the
hidden layer (kept positive by training log tau).
"""

import argparse
import os

import nir

import nirjax
import training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", nargs="?", default=None, help="a .nir file (64 in, 10 out)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default=os.path.join("runs", "example-finetune"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    path = args.graph
    if path is None:  # a stand-in for a graph from elsewhere: untrained, written with plain nir
        path = os.path.join(args.out, "start.nir")
        nir.write(path, training.feedforward_snn(64, 10, hidden=(64,), readout="lif", seed=1))

    src = nirjax.read(path)
    # dt: the file's recorded one (files written by nirjax carry it), else 0.1 ms
    graph = nirjax.from_nir(src, dt=None if "dt" in nirjax.recorded_options(src) else 1e-4)
    train, test = training.digits(n_steps=25, seed=0)
    print(f"before: test accuracy {100 * training.evaluate(graph, test)['accuracy']:.2f} %")

    # train the time constants of the hidden LIF layers too (the readout feeds the Output)
    feeds_output = {e.src for e in graph.plan.edges if e.dst in graph.outputs}
    hidden = [
        n for n, m in graph.nodes.items() if isinstance(m, nirjax.LIF) and n not in feeds_output
    ]
    config = training.TrainConfig(
        epochs=args.epochs,
        lr=2e-3,
        loss=training.default_loss(graph),
        train_nodes=tuple((n, ("tau",)) for n in hidden),
    )
    result = training.fit(graph, train, config=config, progress=True)
    print(f"after:  test accuracy {100 * result.evaluate(test)['accuracy']:.2f} %")

    out = os.path.join(args.out, "finetuned.nir")
    nirjax.write(out, result.graph)
    taus = nir.read(out).nodes[hidden[0]].tau
    print(f"wrote {out}; {hidden[0]}.tau now in [{taus.min():.2e}, {taus.max():.2e}] s (> 0)")


if __name__ == "__main__":
    main()
