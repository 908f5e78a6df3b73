"""Learning curves from runs' history records (matplotlib, imported only when plotting);
``ptdry plot``."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ptdry.errors import ConfigError

__all__ = ["cmd_plot", "plot_history", "plot_runs"]

_STYLES = ("-", "--", ":", "-.")


def _series(docs: Iterable[dict[str, Any]]) -> dict[str, tuple[list[float], list[float], bool]]:
    """``{metric: (x, y, sparse)}``: every point at its global step (the epoch when a record
    has no step), so per-step and per-epoch values share one axis; ``sparse`` marks the
    per-epoch series (drawn with markers)."""
    out: dict[str, tuple[list[float], list[float], bool]] = {}
    for doc in docs:
        phase = doc.get("phase") or ""
        per_epoch = phase != "step"
        x = doc.get("step") if doc.get("step") is not None else doc.get("epoch")
        if x is None:
            continue
        for key, value in (doc.get("metrics") or {}).items():
            name = f"{phase}.{key}" if phase else key
            xs, ys, _ = out.setdefault(name, ([], [], per_epoch))
            xs.append(x)
            ys.append(value)
    return out


def plot_history(
    docs: Iterable[dict[str, Any]],
    output: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    title: str = "",
) -> list[str]:
    """Draw one panel per metric family (``loss``, ``accuracy``, …) of one run into ``output``.

    Returns the metric names drawn. Raises :class:`ConfigError` naming unknown metrics.
    """
    return plot_runs([("", docs)], output, metrics=metrics, title=title)


def plot_runs(
    runs: Sequence[tuple[str, Iterable[dict[str, Any]]]],
    output: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    title: str = "",
) -> list[str]:
    """Overlay the curves of several runs — ``(label, history records)`` each — one panel per
    metric family, each line labelled ``"<label> <metric>"``; returns the metric names drawn.

    Raises:
        ConfigError: a metric no run has, no values to draw, or an output that cannot be written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("`ptdry plot` needs matplotlib: pip install matplotlib") from None
    all_series = [(label, _series(docs)) for label, docs in runs]
    names = list(dict.fromkeys(n for _, series in all_series for n in series))
    if metrics:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            where = "this run" if len(runs) == 1 else "these runs"
            raise ConfigError(f"no metric {unknown[0]!r} in {where}; there are: {', '.join(sorted(names))}")
        names = list(metrics)
    if not names:
        raise ConfigError("nothing to plot: the runs have no recorded values")
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.6), squeeze=False)
    try:
        for ax, (family, members) in zip(axes[0], families.items()):
            for r, (label, series) in enumerate(all_series):
                for m, name in enumerate(members):
                    if name not in series:
                        continue
                    xs, ys, per_epoch = series[name]
                    style: dict[str, Any] = {"marker": "o" if per_epoch and len(xs) < 50 else None, "linewidth": 1.2}
                    if len(all_series) > 1:  # one colour per run, one line style per metric
                        style.update(color=f"C{r % 10}", linestyle=_STYLES[m % len(_STYLES)])
                    ax.plot(xs, ys, label=f"{label} {name}".strip(), **style)
            ax.set_xlabel("step")
            ax.set_ylabel(family)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(output, dpi=110)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {os.fspath(output)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. an extension matplotlib has no format for
        raise ConfigError(f"cannot write the plot to {os.fspath(output)!r}: {str(exc).splitlines()[0]}") from None
    finally:
        plt.close(fig)
    return names


def cmd_plot(args: Any) -> int:
    """``ptdry plot A [B ...] -o curves.png``: the learning curves of one run, or several overlaid."""
    from ptdry.cli.common import find_runs, open_repo
    from ptdry.errors import NotFoundError

    repo = open_repo(args)
    records = find_runs(repo, args.ids)
    history = repo.db.collection("history")
    runs = []
    for rec in records:
        docs = list(history.find({"run": rec.id}, {"_id": 0}).sort("seq", 1))
        if not docs:
            raise NotFoundError(f"run {rec.id} has no history records")
        runs.append(("" if len(records) == 1 else f"{rec.id[:8]}", docs))
    if len(records) == 1:
        rec = records[0]
        title = f"{rec.get('name')} v{rec.get('version')} ({rec.id[:8]})"
    else:
        title = " vs ".join(f"{r.get('name')} v{r.get('version')}" for r in records)
    drawn = plot_runs(runs, args.output, metrics=args.metric, title=title)
    print(f"wrote {args.output} ({', '.join(drawn)})")
    return 0
