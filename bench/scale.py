"""Benchmark: an epoch with 2 gloo processes (torchrun, DDP) against 1 process, same global batch.

    python bench/scale.py [--epochs 6] [--rounds 3] [--hidden 4096] [--log-every 1] [--sweep]

The digits MLP with a larger hidden layer (64-HIDDEN-10), 1500 training rows, Adam, trained
by ptdry's Trainer (no database: the loop itself) with a global batch of 64:

  (a) one process, batch 64, torch using every core;
  (b) one process, batch 64, one torch thread;
  (c) ``torchrun --standalone --nproc_per_node=2``: two processes of one thread each, batch 32
      per process (DistributedDataParallel over gloo, each epoch sharded between them);
  (d) (c) as a hand-written torch DDP loop (shards of a seeded permutation, ``loss.item()``
      per step, validation sums all-reduced): what DDP itself costs here.

Prints the median wall time per epoch in steady state (between consecutive epoch starts,
validation included, first epoch left out) of each, and the ratios c/a, c/b and c/d (medians
over rounds). ``--log-every`` sets ``log_every_n_steps``: ptdry's processes agree on
stopping at every logging step, one small all-reduce each. On a machine with 2 CPU cores DDP is a correctness path, not a speed-up: each step
adds a gradient all-reduce between the processes. ``--sweep`` then runs ``bench/sweep.py``,
the other half of the scaling story (trials per minute with 1 and 2 worker processes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker(epochs: int, hidden: int, batch_size: int, log_every: int) -> None:
    """Train and print the epoch start times (rank 0) as JSON."""
    import torch
    from sklearn.datasets import load_digits

    from ptdry import Callback, Criterion, DataProvider, Looper, Model, ObjectDef, Optimizer, Trainer
    from ptdry.train.nets import MLP

    class EpochClock(Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_epoch_start(self, **_) -> None:
            self.starts.append(time.perf_counter())

        def on_train_end(self, **_) -> None:
            self.starts.append(time.perf_counter())

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    data = DataProvider(train=(X[:1500], y[:1500]), val=(X[1500:], y[1500:]))
    clock = EpochClock()
    model = Model(ObjectDef(MLP, 64, hidden, 10), Optimizer(torch.optim.Adam, lr=1e-3), Criterion(torch.nn.CrossEntropyLoss))
    trainer = Trainer(
        model, Looper(epochs=epochs, batch_size=batch_size), callbacks=[clock], verbose=0, log_every_n_steps=log_every
    )
    metrics = trainer.fit(data, seed=0)
    if trainer.is_global_zero:
        epochs_s = [b - a for a, b in zip(clock.starts, clock.starts[1:])]
        print(json.dumps({"epochs": epochs_s, "val.accuracy": metrics["val.accuracy"], "world": trainer.world_size}))


def plain_worker(epochs: int, hidden: int, batch_size: int) -> None:
    """The same training as a hand-written torch DDP loop (the baseline of what DDP costs):
    each process takes its half of every global batch of a seeded permutation, validation on
    each half with the sums all-reduced."""
    import torch
    import torch.distributed as dist
    from sklearn.datasets import load_digits
    from torch.nn.parallel import DistributedDataParallel

    from ptdry.train.nets import MLP

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)
    Xt, yt, Xv, yv = X[:1500], y[:1500], X[1500:], y[1500:]
    torch.manual_seed(0)
    net = DistributedDataParallel(MLP(64, hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    starts = []
    for epoch in range(epochs):
        starts.append(time.perf_counter())
        order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(epoch))
        net.train()
        for i in range(0, len(order), batch_size * world):
            idx = order[i : i + batch_size * world][rank::world]
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
        net.eval()
        with torch.no_grad():
            out = net.module(Xv[rank::world])
            sums = torch.tensor([(out.argmax(1) == yv[rank::world]).sum().item(), len(out)], dtype=torch.float64)
        dist.all_reduce(sums)
        accuracy = (sums[0] / sums[1]).item()
    starts.append(time.perf_counter())
    if rank == 0:
        print(json.dumps({"epochs": [b - a for a, b in zip(starts, starts[1:])], "val.accuracy": accuracy, "world": world}))
    dist.barrier()
    dist.destroy_process_group()


def run(command: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    line = [text for text in done.stdout.splitlines() if text.startswith("{")][-1]
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--log-every", type=int, default=1, help="log_every_n_steps (processes agree on stopping then)")
    parser.add_argument("--sweep", action="store_true", help="then run bench/sweep.py (sweep throughput)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # internal: batch size
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # internal: the torch loop
    args = parser.parse_args()
    if args.worker is not None:
        (plain_worker(args.epochs, args.hidden, args.worker) if args.plain else worker(args.epochs, args.hidden, args.worker, args.log_every))
        return

    me = [os.path.abspath(__file__), "--epochs", str(args.epochs), "--hidden", str(args.hidden), "--log-every", str(args.log_every)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    cores = os.cpu_count() or 1
    variants = {
        "a": ([sys.executable, *me, "--worker", "64"], {**env, "OMP_NUM_THREADS": str(cores)}),
        "b": ([sys.executable, *me, "--worker", "64"], {**env, "OMP_NUM_THREADS": "1"}),
        "c": (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *me, "--worker", "32"],
            {**env, "OMP_NUM_THREADS": "1"},
        ),
        "d": (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *me, "--worker", "32", "--plain"],
            {**env, "OMP_NUM_THREADS": "1"},
        ),
    }
    per_epoch: dict[str, list[float]] = {k: [] for k in variants}
    accuracy: dict[str, float] = {}
    for r in range(args.rounds):
        for key, (command, variant_env) in variants.items():
            result = run(command, variant_env)
            steady = result["epochs"][1:] or result["epochs"]
            per_epoch[key].append(statistics.median(steady))
            accuracy[key] = result["val.accuracy"]
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {per_epoch[k][-1] * 1e3:.0f} ms" for k in variants), flush=True)

    labels = {
        "a": f"1 process, batch 64, {cores} threads",
        "b": "1 process, batch 64, 1 thread",
        "c": "2 processes (gloo DDP), 32 each, 1 thread each",
        "d": "(c) as a hand-written torch DDP loop",
    }
    print(
        f"\nper-epoch time, digits MLP 64-{args.hidden}-10, 1500 rows, global batch 64, log_every_n_steps={args.log_every}, "
        f"{cores} CPU cores"
    )
    for key, label in labels.items():
        print(f"  ({key}) {label:<48} {statistics.median(per_epoch[key]) * 1e3:8.1f} ms   val.accuracy {accuracy[key]:.3f}")
    ratios = {k: statistics.median(c / x for c, x in zip(per_epoch["c"], per_epoch[k])) for k in ("a", "b", "d")}
    print(f"  c/a = {ratios['a']:.2f}   c/b = {ratios['b']:.2f}   (below 1: DDP is faster)")
    print(f"  c/d = {ratios['d']:.2f}   (ptdry's DDP over torch's own loop)")
    print("sweep throughput (trials/min with 1 and 2 worker processes): python bench/sweep.py")
    if args.sweep:
        subprocess.run([sys.executable, os.path.join(HERE, "sweep.py")], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
