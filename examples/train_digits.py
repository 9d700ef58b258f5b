"""Train a spiking network on the embedded digits set and export it as NIR.

    python examples/train_digits.py [--epochs 30] [--out runs/example-digits]

The network is built as a NIR graph (input -> fc1 -> lif1 -> fc_out -> readout -> output),
imported with nirjax.from_nir, trained with surrogate gradients, and written back with
nirjax.write: what trains is the graph that exports.
"""

import argparse
import os

import nirjax
import training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=os.path.join("runs", "example-digits"))
    args = parser.parse_args()

    train, test = training.digits(n_steps=25, encoder="rate", seed=0)
    nir_graph = training.feedforward_snn(64, 10, hidden=(128,), readout="lif", dt=1e-4, seed=0)
    graph = nirjax.from_nir(nir_graph, dt=1e-4, surrogate="fast_sigmoid")

    config = training.TrainConfig(epochs=args.epochs, batch_size=64, lr=2e-3, loss="counts")
    result = training.fit(graph, train, config=config, test=test, out_dir=args.out)
    metrics = result.evaluate(test)
    print(
        f"test accuracy {100 * metrics['accuracy']:.2f} % ({metrics['n']} samples), "
        f"{result.steps_per_second:.0f} steps/s, compiled {result.traces}x"
    )

    path = os.path.join(args.out, "model.nir")
    nirjax.write(path, result.graph)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
