"""Randomness. Host streams for everything drawn once; an on-device hash for dropout masks.

Initial weights and shuffle orders come from NumPy generators seeded by a
:class:`numpy.random.SeedSequence`, one independent stream per purpose, and are transferred to the
device. The same seed therefore gives the same start and the same batch order on every backend.
"""

from __future__ import annotations

import numpy as np

#: Stream identifiers (``SeedSequence.spawn_key``) so that init and shuffling never share draws.
STREAM_INIT = 0
STREAM_SHUFFLE = 1
STREAM_DROPOUT = 2


def new_seed() -> int:
    """A fresh 63-bit seed from OS entropy (stored on the model so the run can be repeated)."""
    return int(np.random.SeedSequence().generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def host_rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """An independent NumPy Generator for ``(seed, stream, *extra)``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(stream, *extra)))
