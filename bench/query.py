"""Benchmark: a Selector query served by the server vs loading every document and filtering.

    python bench/query.py [--docs 100000] [--uri mongodb://…]

Starts an embedded SecantusDB server in a temporary $PTDRY_HOME (unless --uri is given),
inserts N run documents shaped like ptdry's (cls/mro/config/status/summary), and times:

  (a) the same selection done client-side: fetch all documents, judge each in Python with
      the Selector (what a tool without server-side queries does);
  (b) Selector → Mongo filter served by the server, with the indexes ptdry creates;

for two queries (a selective indexed one, by class; a config range query), alternating
(a) and (b) so machine noise hits both, and prints the medians and the ratio a/b. Then it
times Repo.add_object for 1,000 small objects.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

from tqdm import tqdm

from ptdry.core.module import Module


class Small(Module):
    """A small object: one hyperparameter, a little state."""

    def __init__(self, k=0):
        self.k = k

    def extra_state(self):
        return {"k": self.k}

    def load_extra_state(self, state):
        self.k = state["k"]


def _docs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    classes = ["bench:Session", "bench:Session", "bench:Session", "bench:Sweep"]
    out = []
    for i in range(n):
        cls = "bench:RareRun" if i % 1000 == 0 else rng.choice(classes)
        lr = 10 ** rng.uniform(-5, -1)
        out.append(
            {
                "_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "cls": cls,
                "mro": [cls, "ptdry.core.module:Module"],
                "name": "bench-run",
                "version": i + 1,
                "project": "bench",
                "parent": None,
                "config": {
                    "trainer": {
                        "optimizer": {"lr": lr, "__class__": "ptdry.train.model:Optimizer"},
                        "looper": {"epochs": rng.choice([5, 10, 20]), "batch_size": rng.choice([32, 64, 128])},
                    },
                    "seed": rng.randrange(100),
                },
                "status": {"state": rng.choice(["completed", "completed", "failed", "running"])},
                "summary": {"val.accuracy": {"last": rng.random(), "best": rng.random()}},
            }
        )
    return out


def _time(fn) -> tuple[float, int]:
    t = time.perf_counter()
    n = fn()
    return time.perf_counter() - t, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--uri", default=None, help="a mongodb:// URI (default: a fresh embedded server)")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="ptdry-bench-")
    os.environ["PTDRY_HOME"] = home
    from ptdry.db.interface import DBInterface
    from ptdry.db.repo import Repo
    from ptdry.db.selector import Selector
    from ptdry.db.server import EmbeddedServer

    server = None
    if args.uri is None:
        server = EmbeddedServer(home)
        server.start()
    try:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        # No URI: the embedded default of this $PTDRY_HOME (file artifacts), as users get it.
        db = DBInterface(args.uri, database=name) if args.uri else DBInterface(database=name)
        coll = db.collection("modules")  # ptdry's indexes are created here
        docs = _docs(args.docs)
        t0 = time.perf_counter()
        for i in tqdm(range(0, len(docs), 5000), desc=f"inserting {len(docs)} documents", unit="batch"):
            coll.insert_many(docs[i : i + 5000], ordered=False)
        print(f"inserted {len(docs)} documents in {time.perf_counter() - t0:.1f} s")

        queries = {
            "by class (indexed mro)": Selector("bench:RareRun"),
            "config range + status": Selector(
                None, kwargs={"trainer.optimizer.lr": {"$lt": 1e-3}, "trainer.looper.epochs": 20}
            ),
        }
        rows = []
        for label, sel in queries.items():
            filt = {"$and": [sel.to_mongo(), {"status.state": "completed"}]}
            server_side = lambda: len(db(filt, projection={"_id": 1}))  # noqa: E731  (ptdry's query path)
            client_side = lambda: sum(  # noqa: E731
                1 for d in coll.find({}) if sel(d) and d["status"]["state"] == "completed"
            )
            a, b = [], []
            for _ in range(args.repeats):  # alternate, so noise hits both
                ta, na = _time(client_side)
                tb, nb = _time(server_side)
                if na != nb:
                    print(f"MISMATCH for {label}: client {na} vs server {nb}", file=sys.stderr)
                    return 1
                a.append(ta)
                b.append(tb)
            ma, mb = statistics.median(a), statistics.median(b)
            rows.append((label, nb, ma, mb))
        print(f"\n{'query':28} {'matches':>8} {'load all + filter (s)':>22} {'server query (s)':>17} {'ratio':>8}")
        for label, n, ma, mb in rows:
            print(f"{label:28} {n:8d} {ma:22.3f} {mb:17.4f} {ma / mb:7.1f}x")

        repo = Repo(db, project="bench-add")
        t0 = time.perf_counter()
        for k in tqdm(range(1000), desc="add_object", unit="obj"):
            repo.add_object(Small(k))
        dt = time.perf_counter() - t0
        print(f"\nadd_object x1000 (state to the {repo.artifacts.kind} store): {dt:.2f} s ({dt:.2f} ms per object)")
        db.client.drop_database(db.database)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
