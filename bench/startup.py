"""Benchmark: how fast the command line starts, against a bare Python and an `import torch`.

    python bench/startup.py [--rounds 15]

Times whole processes (start to exit), alternating the commands each round so machine noise
hits them alike, and prints the median wall time of each and its ratio to a bare
``python -c pass``. The target (issue 8): ``ptdry --help`` in ≤ 0.3 s, which needs the CLI
to start without importing torch (``import torch`` alone is printed for scale).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "ptdry --help": [shutil.which("ptdry") or "ptdry", "--help"],
    "python -m ptdry runs --help": [sys.executable, "-m", "ptdry", "runs", "--help"],
    "python -c 'import ptdry.errors'": [sys.executable, "-c", "import ptdry.errors"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache
        _time(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            times[name].append(_time(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':34} {'median s':>9} {'min s':>7} {'/ python':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34} {median:9.3f} {min(values):7.3f} {median / base:9.2f}")
    help_time = statistics.median(times["ptdry --help"])
    print(f"\nptdry --help: {help_time:.3f} s (target <= 0.3 s: {'met' if help_time <= 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
