"""Reload an exported model.nir and show that its accuracy is unchanged.

    python examples/reload_accuracy.py [runs/example-digits/model.nir]

The file records dt and the dynamics options (reset, discretization, surrogate, ...) in its
metadata, so nirjax.load rebuilds exactly the trained network: the predictions are identical,
not just close.
"""

import argparse
import os

import numpy as np

import nirjax
import training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", nargs="?", default=os.path.join("runs", "example-digits", "model.nir")
    )
    args = parser.parse_args()
    if not os.path.exists(args.model):
        raise SystemExit(f"{args.model}: not found; run examples/train_digits.py first")

    graph = nirjax.load(args.model)
    _, test = training.digits(n_steps=25, seed=0)
    loss = training.default_loss(graph)
    first = training.evaluate(graph, test, loss=loss)
    print(
        f"reloaded {args.model}: dt={graph.options.dt}, reset={graph.options.reset}, "
        f"surrogate={graph.options.surrogate.name}"
    )
    print(f"test accuracy {100 * first['accuracy']:.2f} % on {first['n']} samples")

    # write it again and reload: the outputs are bit-for-bit the same
    again_path = args.model.replace(".nir", "-again.nir")
    nirjax.write(again_path, graph)
    again = nirjax.load(again_path)
    same = np.array_equal(
        training.predict(graph, test.inputs), training.predict(again, test.inputs)
    )
    second = training.evaluate(again, test, loss=loss)
    print(f"after a second write/load: {100 * second['accuracy']:.2f} %, identical outputs: {same}")


if __name__ == "__main__":
    main()
