"""Train on a folder of images, one subfolder per class, read with DataReader — and load the
stored run back without passing the images again.

    python examples/folder_of_images.py [--folder DIR] [--epochs 8] [--db URI]

The example writes the images itself: scikit-learn's 1,797 bundled 8x8 digits as PNG files
under ``DIR/<digit>/<n>.png`` (a temporary folder by default). ptdry reads the folder with
``DataReader``, partitions it 70 / 15 / 15 %, trains an MLP in a Session and records the run;
the run's definition holds the folder's path and content fingerprint, so ``Session.load``
reads the images again (and would refuse them, naming the folder, had they changed).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import ptdry
from ptdry import (
    Criterion,
    DataProvider,
    DataReader,
    DBInterface,
    Looper,
    Model,
    ObjectDef,
    Optimizer,
    Session,
    Trainer,
)
from ptdry.db.interface import mask_uri
from ptdry.train.nets import MLP


def write_images(folder: Path) -> int:
    """The digits as 8x8 grey PNG files, one subfolder per class; returns how many."""
    from PIL import Image
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = (image.reshape(8, 8) * 255 / 16).round().astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / str(label) / f"{i:04d}.png")
    return len(images)


@ptdry.allow  # a stored run names this function; loading it back needs it allowed
def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (a row or a batch of them) to float32 in [0, 1]."""
    return pixels.astype(np.float32) / 255.0


def make_session(folder: Path, epochs: int = 8, db: DBInterface | str | None = None, seed: int = 0) -> Session:
    images = DataReader(mode="L").read(folder)  # (image, label) rows; classes from the subfolders
    data = DataProvider(
        images.apply_X(to_unit, vectorized=True), partition=(70, 15, 15), seed=seed, classes=images.classes
    )
    return Session(
        name="digits-from-images",
        trainer=Trainer(
            model=Model(
                net=ObjectDef(MLP, 64, 128, 10),
                optimizer=Optimizer(torch.optim.Adam, lr=3e-3),
                criterion=Criterion(torch.nn.CrossEntropyLoss),
            ),
            looper=Looper(epochs=epochs, batch_size=64),
            progress_bar=False,
        ),
        data=data,
        db=db if isinstance(db, DBInterface) else DBInterface(db),
        seed=seed,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="where to write the images (default: a temporary folder)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--db", default=None, help="database URI (default: the embedded server)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(min(2, torch.get_num_threads()))

    folder = args.folder or Path(tempfile.mkdtemp(prefix="ptdry-images-")) / "digits"
    print(f"wrote {write_images(folder)} images to {folder}")
    session = make_session(folder, args.epochs, args.db)
    result = session.run()
    print(f"test accuracy: {result['test.accuracy']:.4f}")
    print(f"run {result.run_id} stored in {session.db!r} ({result.status})")

    loaded = Session.load(result.run_id, which=None, db=session.db)  # the images are read again
    assert loaded.data.problems() == [], loaded.data.problems()
    print(f"loaded back: {loaded.data.train.allocated} training images from {loaded.data.dataset.source.path}")
    db_flag = f" --db '{mask_uri(args.db)}'" if args.db else ""
    print(f"see it with: ptdry{db_flag} show {result.run_id[:8]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
