"""Progress display for ``fit``: a tqdm bar per epoch, or one line per epoch.

The bar shows a live running loss only on host backends, where reading it costs nothing; on a
device the loss appears when the epoch ends (reading it mid-epoch would stall the device).
"""

from __future__ import annotations

from typing import Any

#: A finished epoch's bar: no bar graphic and no rate, so every metric fits 120 columns.
_FINISHED_BAR = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class Progress:
    """A tqdm bar per epoch (verbose=1) or one line per epoch (verbose=2, or tqdm missing)."""

    def __init__(self, verbose: int, n_batches: int, live: bool) -> None:
        self.verbose, self.n_batches, self.live = verbose, n_batches, live
        self.bar: Any = None
        self.tqdm: Any = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm  # optional (the progress extra)

                self.tqdm = tqdm
            except ImportError:
                self.verbose = 2
        self.every = max(1, n_batches // 20)

    def start(self, epoch: int, total_epochs: int) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(
                total=self.n_batches,
                desc=f"epoch {epoch}/{total_epochs}",
                unit="batch",
                leave=True,
                dynamic_ncols=True,
            )

    def batch(self, i: int, sums: Any) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if self.live and i % self.every == 0:
            self.bar.set_postfix(loss=f"{sums.running_loss():.4f}", refresh=False)

    def end(self, epoch: int, total_epochs: int, logs: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            # the finished bar gives its room to the metrics: a full bar, rate and all the
            # metrics overflow 120 columns, and tqdm cuts off the end (val_accuracy)
            self.bar.bar_format = _FINISHED_BAR
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.verbose:
            print(f"epoch {epoch}/{total_epochs}  {text}", flush=True)

    def note(self, text: str) -> None:
        """One line of information (e.g. how long compiling took), when not silent."""
        if self.tqdm is not None:
            self.tqdm.write(text)
        elif self.verbose:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
