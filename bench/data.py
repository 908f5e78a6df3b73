"""Benchmark: what ptdry's DataLoader costs per batch, and reading a large HDF5 file in batches.

    python bench/data.py [--rows 100000] [--features 64] [--rounds 7] [--gb 1.0] [--skip-hdf5]

1. The same batches — rows of one float32 (rows x features) array and int64 labels, in order,
   batch sizes 64 and 1024 — from
     (a) ``torch.utils.data.DataLoader`` over a ``TensorDataset`` (the plain baseline),
     (b) ptdry's ``DataLoader`` over a ``NumpyDataset`` (NumPy batches; the torch Model takes
         them with ``torch.from_numpy``, no copy),
     (c) ptdry's ``DataLoader`` over ``NumpyDataset(...).torch()`` (tensor batches).
   The batches of (a), (b) and (c) are checked equal. Then the same with shuffling (each loader
   its own random order: the same work, other rows). Rounds alternate a, b, c so machine noise
   hits all of them; printed: the median time per batch and the ratios b/a, c/a (medians of
   the per-round ratios). Target: ptdry's per-batch cost <= 1.1x the plain loader's.
2. An HDF5 file of ``--gb`` gigabytes (float32 rows of 1024 values, written in chunks) read in
   batches of 1024 rows through ``DataReader`` + ``DataLoader`` — sequentially, and 64 shuffled
   batches — against hand-written h5py slicing, in a child process whose peak RSS is printed
   (it stays far below the file's size: nothing loads the file whole).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

ROW_VALUES = 1024  # float32 values per HDF5 row: 4 KiB


def _per_batch(loader) -> float:
    t0 = time.perf_counter()
    n = 0
    for _ in loader:
        n += 1
    return (time.perf_counter() - t0) / n


def _loaders(x: np.ndarray, y: np.ndarray, batch: int, shuffle: bool) -> dict:
    import torch

    from ptdry import DataLoader, NumpyDataset

    plain = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch, shuffle=shuffle
    )
    return {
        "a torch": plain,
        "b ptdry": DataLoader(NumpyDataset((x, y)), batch_size=batch, shuffle=shuffle),
        "c ptdry.torch()": DataLoader(NumpyDataset((x, y)).torch(), batch_size=batch, shuffle=shuffle),
    }


def _same_batches(loaders: dict) -> None:
    batches = {name: list(loader) for name, loader in loaders.items()}
    reference = batches["a torch"]
    for name, got in batches.items():
        assert len(got) == len(reference), name
        for (x1, y1), (x2, y2) in zip(reference, got):
            assert np.array_equal(np.asarray(x1), np.asarray(x2)) and np.array_equal(np.asarray(y1), np.asarray(y2)), (
                name
            )


def bench_loaders(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, args.features), dtype=np.float32)
    y = rng.integers(0, 10, args.rows)
    print(f"1. per-batch cost, {args.rows} rows x {args.features} float32 + int64 labels, {args.rounds} rounds")
    for shuffle in (False, True):
        for batch in (64, 1024):
            loaders = _loaders(x, y, batch, shuffle)
            if not shuffle:
                _same_batches(loaders)
            for loader in loaders.values():  # warm-up
                _per_batch(loader)
            times: dict[str, list[float]] = {name: [] for name in loaders}
            for _ in range(args.rounds):
                for name, loader in loaders.items():
                    times[name].append(_per_batch(loader))
            base = times["a torch"]
            line = f"   {'shuffled' if shuffle else 'in order'}, batch {batch:5d}:"
            for name, t in times.items():
                line += f"  {name} {statistics.median(t) * 1e6:8.1f} us"
            ratios = {
                name: statistics.median([t / b for t, b in zip(times[name], base)])
                for name in times
                if name != "a torch"
            }
            line += "   " + "  ".join(f"{name[0]}/a = {r:.3f}" for name, r in ratios.items())
            line += "   (same batches: checked)" if not shuffle else ""
            print(line)


def write_hdf5(path: str, gb: float) -> int:
    import h5py

    rows = int(gb * 2**30) // (ROW_VALUES * 4)
    chunk = 16384
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        xs = f.create_dataset("x", shape=(rows, ROW_VALUES), dtype="float32", chunks=(256, ROW_VALUES))
        ys = f.create_dataset("y", shape=(rows,), dtype="int64")
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            xs[start:stop] = rng.random((stop - start, ROW_VALUES), dtype=np.float32)
            ys[start:stop] = np.arange(start, stop)
    return rows


def read_hdf5(path: str, mode: str) -> dict:
    """Run in a child process: one way of reading ``path`` in batches of 1024; returns the
    seconds, the batches, the rows checked and the child's peak RSS."""
    import h5py

    from ptdry import DataLoader, DataReader

    t0 = time.perf_counter()
    batches = rows = 0
    if mode == "h5py":
        with h5py.File(path, "r") as f:
            n = len(f["y"])
            for start in range(0, n, 1024):
                x, y = f["x"][start : start + 1024], f["y"][start : start + 1024]
                batches, rows = batches + 1, rows + len(y)
    else:
        data = DataReader(keys=["x", "y"]).read(path)
        loader = DataLoader(data, batch_size=1024, shuffle=mode == "ptdry-shuffled", seed=0)
        for x, y in loader:
            assert x.shape == (len(y), ROW_VALUES)
            batches, rows = batches + 1, rows + len(y)
            if mode == "ptdry-shuffled" and batches == 64:
                break
    return {"seconds": time.perf_counter() - t0, "batches": batches, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would include the parent's peak
    from before the exec on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def bench_hdf5(args: argparse.Namespace) -> None:
    folder = tempfile.mkdtemp(prefix="ptdry-bench-data-")
    path = os.path.join(folder, "big.h5")
    t0 = time.perf_counter()
    rows = write_hdf5(path, args.gb)
    size = os.path.getsize(path) / 2**30
    print(
        f"\n2. HDF5: wrote {size:.2f} GiB ({rows} rows of {ROW_VALUES} float32) in {time.perf_counter() - t0:.1f} s: {path}"
    )
    results = {}
    subprocess.run(
        [sys.executable, __file__, "--read-hdf5", path, "h5py"], capture_output=True, check=True
    )  # warm the page cache
    for mode in ("h5py", "ptdry", "ptdry-shuffled"):
        child = subprocess.run(
            [sys.executable, __file__, "--read-hdf5", path, mode], capture_output=True, text=True, check=True
        )
        results[mode] = r = json.loads(child.stdout.strip().splitlines()[-1])
        rate = r["rows"] * ROW_VALUES * 4 / 2**20 / r["seconds"]
        per_batch = r["seconds"] / r["batches"] * 1e3
        print(
            f"   {mode:15s} {r['batches']:4d} batches in {r['seconds']:6.2f} s ({rate:7.1f} MiB/s, "
            f"{per_batch:6.2f} ms/batch), peak RSS {r['peak_rss_mb']:6.0f} MiB"
        )
    ratio = (results["ptdry"]["seconds"] / results["ptdry"]["batches"]) / (
        results["h5py"]["seconds"] / results["h5py"]["batches"]
    )
    print(
        f"   ptdry / h5py per batch (in order): {ratio:.3f}; the file is {size * 1024:.0f} MiB, the readers' peak RSS above"
    )
    os.remove(path)
    os.rmdir(folder)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--read-hdf5":
        print(json.dumps(read_hdf5(sys.argv[2], sys.argv[3])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--skip-hdf5", action="store_true")
    args = ap.parse_args()
    bench_loaders(args)
    if not args.skip_hdf5:
        bench_hdf5(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
