"""Benchmark: what ptdry's training loop costs over a hand-written PyTorch loop.

    python bench/overhead.py [--epochs 20] [--rounds 5]

The same MLP (64-128-10), digits data, batch size 64, Adam, seed and epochs, trained by

  (a) a plain PyTorch loop (shuffle, forward, loss, backward, step, loss.item(), a
      validation pass per epoch, a test pass at the end);
  (b) ptdry: Session → Trainer with its default callbacks, per-step history streamed to the
      embedded database (a fresh SecantusDB server in a temporary $PTDRY_HOME), the run
      document, heartbeat and final state — everything a user gets;
  (c) PyTorch Lightning, if installed (progress bar, logger and checkpointing off, as in
      Lightning's own parity benchmark).

Rounds alternate a, b, c so machine noise hits all of them. Prints, for each, the median
wall time per epoch in steady state (between consecutive epoch starts) and the whole run
divided by the number of epochs (one-time setup included), with the ratios b/a and c/a
(medians of the per-round ratios).
Target: b/a <= 1.05 per epoch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


class EpochClock:
    """Times between consecutive epoch starts (train + validation of one epoch), so the
    steady-state cost per epoch is measured apart from one-time setup and teardown."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def tick(self) -> None:
        self.starts.append(time.perf_counter())

    def median(self) -> float:
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:])]
        return statistics.median(gaps) if gaps else float("nan")

    # as a ptdry callback (runtime wiring, not part of the stored definition)
    def on_epoch_start(self, **_) -> None:
        self.tick()


def plain_loop(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float:
    from ptdry.train.nets import MLP

    torch.manual_seed(seed)
    x, y = (torch.as_tensor(a) for a in splits["train"])
    xv, yv = (torch.as_tensor(a) for a in splits["val"])
    xt, yt = (torch.as_tensor(a) for a in splits["test"])
    net = MLP(64, 128, 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        if clock:
            clock.tick()
        net.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=g).split(64):
            out = net(x[idx])
            loss = loss_fn(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        net.eval()
        with torch.no_grad():  # loss and accuracy, as ptdry's default metrics
            for i in range(0, len(xv), 64):
                out = net(xv[i : i + 64])
                loss_fn(out, yv[i : i + 64]).item()
                (out.argmax(1) == yv[i : i + 64]).float().mean().item()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    elapsed = time.perf_counter() - t0
    assert acc > 0.5
    return elapsed


def ptdry_session(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float:
    from digits import make_session  # examples/digits.py: the README's tree

    session = make_session(epochs=epochs, seed=seed)
    # The Trainer's default callbacks only (as the issue asks): the example's EarlyStopping
    # would end early and its per-epoch Checkpoint has no counterpart in (a).
    session.trainer.remove_callback("EarlyStopping")
    session.trainer.remove_callback("Checkpoint")
    if clock:
        session.trainer.add_callback(clock, name="bench.EpochClock")
    t0 = time.perf_counter()
    result = session.run()
    elapsed = time.perf_counter() - t0
    assert result["test.accuracy"] > 0.5
    return elapsed


def lightning_loop(splits: dict, epochs: int, seed: int, clock: EpochClock | None = None) -> float | None:
    try:
        import lightning as L
    except ImportError:
        try:
            import pytorch_lightning as L  # type: ignore[no-redef]
        except ImportError:
            return None
    from ptdry.train.nets import MLP

    class Lit(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = MLP(64, 128, 10)
            self.loss_fn = torch.nn.CrossEntropyLoss()

        def training_step(self, batch, _):
            x, y = batch
            return self.loss_fn(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            return self.loss_fn(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class Clock(L.Callback):
        def on_train_epoch_start(self, *_):
            if clock:
                clock.tick()

    L.seed_everything(seed, verbose=False)
    ds = lambda s: torch.utils.data.TensorDataset(*(torch.as_tensor(a) for a in splits[s]))  # noqa: E731
    train = torch.utils.data.DataLoader(ds("train"), batch_size=64, shuffle=True)
    val = torch.utils.data.DataLoader(ds("val"), batch_size=64)
    trainer = L.Trainer(
        max_epochs=epochs,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        num_sanity_val_steps=0,
        callbacks=[Clock()],
    )
    model = Lit()
    t0 = time.perf_counter()
    trainer.fit(model, train, val)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    os.environ["PTDRY_HOME"] = tempfile.mkdtemp(prefix="ptdry-overhead-")
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)  # less scheduler noise; the same for all three
    from digits import digits_splits

    from ptdry.db.server import EmbeddedServer

    splits = digits_splits(args.seed)
    server = EmbeddedServer()
    server.start()  # started once, as a user's daemon would be
    whole: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    steady: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    try:
        plain_loop(splits, 1, args.seed)  # warm-up (allocator, kernels)
        ptdry_session(splits, 1, args.seed)  # warm-up (imports, first connection)
        for r in range(args.rounds):
            order = [("a", plain_loop), ("b", ptdry_session), ("c", lightning_loop)]
            if r % 2:
                order.reverse()
            for key, fn in order:
                clock = EpochClock()
                t = fn(splits, args.epochs, args.seed, clock)
                if t is not None:
                    whole[key].append(t / args.epochs)
                    steady[key].append(clock.median())
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{k}={steady[k][-1] * 1e3:.1f} ms/epoch" for k in steady if steady[k])
            )
    finally:
        server.stop()
    ms = {k: statistics.median(v) for k, v in steady.items() if v}
    mw = {k: statistics.median(v) for k, v in whole.items() if v}
    steps = int(np.ceil(len(splits["train"][0]) / 64))
    print(
        f"\nMLP 64-128-10 on digits ({len(splits['train'][0])} train samples, {steps} steps/epoch, batch 64), "
        f"{args.epochs} epochs, median of {args.rounds} rounds, 1 torch thread"
    )
    # Ratios are medians of per-round ratios: each round's runs are neighbours in time, so
    # slow phases of the machine cancel out better than in a ratio of medians.
    def paired(key: str, series: dict[str, list[float]]) -> float:
        return statistics.median(x / y for x, y in zip(series[key], series["a"]))

    print(f"{'':28} {'per epoch':>10} {'ratio':>7}   {'whole run / epochs':>18} {'ratio':>7}")
    rows = [("a", "(a) plain PyTorch loop"), ("b", "(b) ptdry Session + DB"), ("c", "(c) PyTorch Lightning")]
    for key, label in rows:
        if key not in ms:
            print(f"{label:28} not installed (pip install lightning)")
            continue
        print(
            f"{label:28} {ms[key] * 1e3:8.2f}ms {paired(key, steady):7.3f}   {mw[key] * 1e3:16.2f}ms {paired(key, whole):7.3f}"
        )
    print(
        "\nper epoch: time between consecutive epoch starts (one epoch of training + validation);"
        "\nwhole run: everything from start to end (for (b): storing the run and its data, connecting,"
        "\nthe final state and the test pass), divided by the number of epochs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
