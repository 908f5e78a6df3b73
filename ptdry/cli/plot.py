"""Learning curves from a run's history records (matplotlib, imported only when plotting)."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ptdry.errors import ConfigError

__all__ = ["plot_history"]


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
    """Draw one panel per metric family (``loss``, ``accuracy``, …) into ``output``.

    Returns the metric names drawn. Raises :class:`ConfigError` naming unknown metrics.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("`ptdry plot` needs matplotlib: pip install matplotlib") from None
    series = _series(docs)
    if metrics:
        unknown = [m for m in metrics if m not in series]
        if unknown:
            raise ConfigError(f"no metric {unknown[0]!r} in this run; it has: {', '.join(sorted(series))}")
        series = {m: series[m] for m in metrics}
    families: dict[str, list[str]] = {}
    for name in series:
        families.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.6), squeeze=False)
    for ax, (family, names) in zip(axes[0], families.items()):
        for name in names:
            xs, ys, per_epoch = series[name]
            ax.plot(xs, ys, marker="o" if per_epoch and len(xs) < 50 else None, label=name, linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel(family)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return list(series)
