"""Train the digits MLP in PyTorch and in Keras, then compare the two runs side by side.

    python examples/compare_frameworks.py [--epochs 20] [--db URI]

Both runs are stored (examples/digits.py and examples/digits_tf.py); ``ptdry.compare``
loads each run's last checkpoint from the database, predicts the same test split with both
models and measures them with the same metrics. The comparison is stored too.
"""

from __future__ import annotations

import argparse
import logging
import sys

import digits
import digits_tf

from ptdry import DBInterface, compare


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--db", default=None, help="database URI (default: the embedded server)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    db = DBInterface(args.db)

    runs = []
    for module in (digits, digits_tf):
        session = module.make_session(args.epochs, db, args.seed)
        result = session.run()
        print(f"{session.name}: test accuracy {result['test.accuracy']:.4f} (run {result.run_id})")
        runs.append(result.run_id)

    test = digits.digits_splits(args.seed)["test"]
    table = compare(runs, test, metrics=["accuracy", "f1", "log_loss", "top_k_accuracy"], db=db, name="digits: torch vs keras")
    print()
    print(table.drop(columns=["class"]).to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\ncomparison {table.attrs['comparison_id']} stored; see it with: ptdry comparisons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
