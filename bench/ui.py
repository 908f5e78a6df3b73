"""Benchmark: the dashboard's two heavy answers against the baselines they replace.

    python bench/ui.py [--steps 1000000] [--runs 100000] [--repeats 3]

Starts an embedded SecantusDB server in a temporary $PTDRY_HOME (its database "ptdry", which
``ptdry runs`` reads) and measures, each repeated and reported as medians:

1. Curves of one long run (``--steps`` records of train.loss and train.lr, a val record
   every 1000 steps), written with rollups as a run's background writer writes them:
   (a) what ``ptdry plot`` does: read every history record of the run;
   (b) ``GET /api/runs/{id}/history?points=1000`` (all metrics, 1000 px wide), and the
       same zoomed into 1% of the run.
   Also the cost of writing the rollups: batches of 5000 records inserted with and without
   them, alternating.
2. The runs page over ``--runs`` run documents: ``ptdry runs --where … --limit 50`` (the
   CLI, output discarded) against ``GET /api/runs?where=…&limit=50``, alternating.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

from tqdm import tqdm


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _history(run: str, start: int, n: int) -> list[dict]:
    from ptdry import Statistic
    from ptdry.db.history_store import history_document

    docs = []
    for step in range(start, start + n):
        stat = Statistic("train", {"loss": 1 / (1 + step / 1e4) + 0.02 * math.sin(step / 50), "lr": 1e-3}, step=step, epoch=step // 10_000)
        docs.append(history_document(run, step + step // 1000, stat))
        if step % 1000 == 999:
            docs.append(history_document(run, step + step // 1000 + 1, Statistic("val", {"loss": 1 / (1 + step / 1e4)}, step=step, epoch=step // 10_000)))
    return docs


def _run_docs(n: int) -> list[dict]:
    import datetime as dt

    rng = random.Random(0)
    t0 = dt.datetime(2025, 1, 1)
    return [
        {
            "_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "cls": "bench:Session",
            "name": "bench-run",
            "version": i + 1,
            "project": "bench",
            "parent": None,
            "tags": [],
            "created_at": t0 + dt.timedelta(seconds=i),
            "config": {"trainer": {"optimizer": {"lr": 10 ** rng.uniform(-5, -1)}, "looper": {"epochs": rng.choice([5, 10, 20])}}},
            "status": {"state": rng.choice(["completed", "completed", "failed"])},
            "summary": {"val": {"accuracy": {"last": rng.random(), "best": rng.random(), "mode": "max"}}},
        }
        for i in range(n)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="ptdry-bench-ui-")
    os.environ["PTDRY_HOME"] = home
    from starlette.testclient import TestClient

    from ptdry.cli.main import main as cli
    from ptdry.db.history_store import insert_history, insert_new
    from ptdry.db.interface import DBInterface
    from ptdry.db.server import EmbeddedServer
    from ptdry.ui.app import create_app

    server = EmbeddedServer(home)
    uri = server.start()
    db = DBInterface(uri)
    try:
        history = db.collection("history")
        # -- 1. curves of a long run ---------------------------------------------------------
        with_rollups, without = [], []
        for i, start in enumerate(tqdm(range(0, args.steps, 5000), desc=f"writing {args.steps} steps", unit="batch")):
            docs = _history("long", start, min(5000, args.steps - start))
            if i < 20:  # the write overhead, alternating on the first 100k steps
                copy = [{**d, "_id": "w" + d["_id"], "run": "w" + d["run"]} for d in docs]
                t = time.perf_counter()
                insert_new(history, copy)
                without.append(time.perf_counter() - t)
            t = time.perf_counter()
            insert_history(history, docs)
            if i < 20:
                with_rollups.append(time.perf_counter() - t)
        history.delete_many({"run": "wlong"})
        db.collection("modules").insert_one({"_id": "long", "name": "long", "version": 1, "project": "bench", "parent": None})
        client = TestClient(create_app(db), base_url="http://127.0.0.1")
        api = lambda **p: client.get("/api/runs/long/history", params={"points": 1000, **p}).json()  # noqa: E731
        result = api()
        assert {"train.loss", "train.lr", "val.loss"} == set(result["series"]), result
        points = sum(len(s["step"]) for s in result["series"].values())
        t_api = _median_time(api, args.repeats)
        span = args.steps // 100
        t_zoom = _median_time(lambda: api(start=args.steps // 2, end=args.steps // 2 + span), args.repeats)
        print(f"\ncurves of a {args.steps}-step run ({history.estimated_document_count()} history records)")
        print("  reading every record (ptdry plot) ...", flush=True)
        t_raw = _median_time(lambda: sum(1 for _ in history.find({"run": "long"}, {"_id": 0}).sort("seq", 1)), 1)
        print(f"  {'read all records (ptdry plot)':44} {t_raw:8.3f} s")
        print(f"  {'GET history, 3 metrics, 1000 px':44} {t_api:8.3f} s  ({points} points; {t_raw / t_api:.0f}x faster)")
        print(f"  {'GET history, zoomed on 1% of the run':44} {t_zoom:8.3f} s")
        w, wo = statistics.median(with_rollups), statistics.median(without)
        print(f"  writing 5000 records: {wo:.3f} s, with rollups {w:.3f} s ({w / wo:.2f}x)")

        # -- 2. the runs page over many runs -----------------------------------------------------
        modules = db.collection("modules")
        docs = _run_docs(args.runs)
        for i in tqdm(range(0, len(docs), 5000), desc=f"inserting {args.runs} runs", unit="batch"):
            modules.insert_many(docs[i : i + 5000], ordered=False)
        where = "trainer.optimizer.lr < 1e-3 and status = completed"

        def run_cli():
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli(["--db", uri, "runs", "--where", where, "--limit", "50"]) == 0

        page = lambda: client.get("/api/runs", params={"where": where, "limit": 50}).json()  # noqa: E731
        assert len(page()["runs"]) == 50
        t_cli, t_page = [], []
        for _ in range(args.repeats):
            t_cli.append(_median_time(run_cli, 1))
            t_page.append(_median_time(page, 1))
        t_count = _median_time(lambda: client.get("/api/runs/count", params={"where": where}).json(), 1)
        mc, mp = statistics.median(t_cli), statistics.median(t_page)
        print(f"\nruns page over {args.runs} runs, where {where!r}, 50 rows")
        print(f"  {'ptdry runs --limit 50':44} {mc:8.3f} s")
        print(f"  {'GET /api/runs?limit=50':44} {mp:8.3f} s  ({mc / mp:.2f}x the CLI's speed)")
        print(f"  {'GET /api/runs/count (asked after the page)':44} {t_count:8.3f} s")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
