"""The Trainer's epoch: batches, accumulation windows, step values, agreement between ranks
(a mixin of :class:`~ptdry.train.trainer.Trainer`).

**Steps and batches.** A *step* is an optimizer step. With ``accumulate_grad_batches=N``
the batches of an epoch form windows of N (the last window of an epoch may be shorter);
each batch's loss is divided by the number of batches in its window before backward, so a
window's gradient is the mean of its batches' gradients (with equal batch sizes, that of one
batch N times as large), and the optimizer steps once, after the window's last batch.
``on_step_start`` fires before a window's first batch, ``on_step_end`` after its optimizer
step, with ``loss`` the mean of the window's batch losses (unscaled). ``trainer.step`` and
``max_steps`` count optimizer steps; the Looper counts batches too.

**Checkpoints are taken at step boundaries** (``on_step_end``, ``on_epoch_end``), never
inside a window, so they resume exactly; a state taken inside a window (from another
trigger, or on an exception) lacks the window's gradients, and loading it logs a warning.

**Reading values.** On the CPU each batch's values become floats at once. On a GPU the
Trainer keeps them on the device and reads them once per logging step
(``log_every_n_steps``), so the loop does not wait for the device after every batch; the
epoch's sums stay on the device until the epoch ends. Callbacks' ``on_step_end`` then get
``loss`` as a float on logging steps and None between them (``outputs`` holds the device
values); NaNDetector checks the logged losses (a NaN loss makes the parameters NaN, so it is
still caught).

**Distributed.** Each rank trains on its shard of every global batch (see
``DataLoader.shard``), its loss weighted by its shard's share of the global batch, so the
averaged gradients are those of the whole global batch. Ranks agree on stopping at every
logging step and at the end of each epoch (one small all-reduce), so a ``trainer.stop()`` on
one rank stops all of them at the same step; an epoch's training sums are added over ranks.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

from ptdry.train import distributed

__all__ = ["EpochLoop"]

log = logging.getLogger(__name__)


def _with_last(iterable: Any) -> Iterator[tuple[Any, bool]]:
    """``(item, is_last)`` for each item, reading one ahead."""
    it = iter(iterable)
    try:
        item = next(it)
    except StopIteration:
        return
    for following in it:
        yield item, False
        item = following
    yield item, True


class EpochLoop:
    """``_run_epoch`` and ``_end_epoch`` of :class:`~ptdry.train.trainer.Trainer`."""

    def _run_epoch(self, data: Any) -> None:
        looper, run, cbs, model = self.looper, self._run, self._cbs, self.model
        world = self.__dict__["_world"]
        epoch, epoch_index = looper.epoch, looper.epochs_done
        batches = looper.batches(data, self.seed, shard=(world.rank, world.size) if world is not None else None)
        total = batches.num_batches
        run.in_epoch = True
        if not looper.mid_epoch:
            run.acc_count, run.acc_sums = 0, {}
            self._fire("on_epoch_start", step=looper.steps_done, epoch=epoch, num_batches=total)
        model.train()
        n_acc, log_every, defer = self.accumulate_grad_batches, self.log_every_n_steps, model.defers_reads
        sums = run.acc_sums
        batch_idx = looper.batches_done
        if n_acc > 1 and batch_idx % n_acc and batch_idx != total:
            log.warning(
                "resuming at batch %d, inside a window of accumulate_grad_batches=%d: the gradients of the "
                "window's first %d batch(es) were not saved, so this window steps without them",
                batch_idx, n_acc, batch_idx % n_acc,
            )  # fmt: skip
        lookahead = n_acc > 1 and total is None
        source = _with_last(batches.remaining()) if lookahead else batches.remaining()
        window: dict[str, Any] = {}
        in_window = 0
        for item in source:
            if n_acc == 1:
                batch, end, factor = item, True, 1.0
            else:
                batch, last = item if lookahead else (item, batch_idx + 1 == total)
                pos = batch_idx % n_acc
                end = last or pos == n_acc - 1
                factor = 1.0 / (n_acc if total is None else min(n_acc, total - batch_idx + pos))
            if world is not None:
                factor *= batches.loss_scale(epoch_index, batch_idx)
            run.accumulating, run.loss_factor = not end, factor
            step = looper.steps_done + 1
            run.window_start = in_window == 0
            if run.window_start and cbs.handlers("on_step_start"):
                self._fire("on_step_start", step=step, epoch=epoch, batch_idx=batch_idx, batch=batch)
            out = self.train_step(batch)
            if not isinstance(out, dict) and not isinstance(out, Mapping):  # dict first: the ABC check is slow
                out = {"loss": out}
            if defer:  # (detached: a graph kept in the epoch's sums would live until the epoch ends)
                values = {k: v.detach() if hasattr(v, "detach") else v for k, v in out.items()}
            else:
                values = {k: v.item() if hasattr(v, "item") else float(v) for k, v in out.items()}
            looper.advance_batch(step=end)
            run.acc_count += 1
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            if n_acc > 1:
                in_window += 1
                for k, v in values.items():
                    window[k] = window.get(k, 0.0) + v
                if not end:
                    batch_idx += 1
                    continue
                values = {k: v / in_window for k, v in window.items()}
                window, in_window = {}, 0
            logged = step % log_every == 0
            shown: Mapping[str, Any] | None = values
            if defer:
                shown = model.read_values(values) if logged else None
            if logged:
                self.log("step", shown, step=step, epoch=epoch)
            if cbs.handlers("on_step_end"):
                loss = shown.get("loss") if shown is not None else None
                self._fire("on_step_end", step=step, epoch=epoch, batch_idx=batch_idx, loss=loss, outputs=shown if shown is not None else values)
            batch_idx += 1
            if world is None:
                stop = run.stop_reason is not None
            else:  # ranks stop together, at a step where they agree
                stop = logged and self._agree_to_stop()
            if stop or looper.steps_exhausted:
                break
        run.accumulating, run.loss_factor, run.window_start = False, 1.0, True
        self._end_epoch(data, epoch)

    def _agree_to_stop(self) -> bool:
        """True (on every rank) when any rank asked to stop; one all-reduce."""
        run = self._run
        if not distributed.any_rank(run.stop_reason is not None):
            return False
        if run.stop_reason is None:
            run.stop_reason = "another rank stopped"
            log.info("training stops: another rank stopped")
        return True

    def _should_stop(self) -> bool:
        """Whether the loop ends before another epoch (agreed between ranks)."""
        if self.__dict__["_world"] is None:
            return self._run.stop_reason is not None
        return self._agree_to_stop()

    def _end_epoch(self, data: Any, epoch: int) -> None:
        looper, run = self.looper, self._run
        metrics: dict[str, float] = {}
        if run.acc_count:
            sums = self.model.read_values(run.acc_sums) if self.model.defers_reads else run.acc_sums
            keys, count = list(sums), run.acc_count
            totals = [sums[k] for k in keys]
            if self.__dict__["_world"] is not None:
                *totals, count = distributed.all_reduce_sum([*totals, float(count)])
            means = {k: s / count for k, s in zip(keys, totals)}
            metrics.update(self.log("train", means, step=looper.steps_done, epoch=epoch))
        if looper.validation_due(epoch) and data.has("val"):
            metrics.update({f"val.{k}": v for k, v in self.validate(data, "val").items()})
        looper.advance_epoch()
        run.acc_count, run.acc_sums, run.in_epoch = 0, {}, False
        self._fire("on_epoch_end", step=looper.steps_done, epoch=epoch, metrics=metrics)
