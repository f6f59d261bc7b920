"""The data order: one seeded global order cut into global batches (the same for any process count), each
process taking its slice; and the sequential batches of eval() / predict()."""
from __future__ import annotations

import numpy as np
import paddle

__all__ = ["GlobalBatchSampler", "SequentialBatches"]


class GlobalBatchSampler(paddle.io.BatchSampler):
    """Batches of one process, cut from one seeded global order that does not depend on the process count.

    Each epoch the sample indices are permuted with a generator seeded by (seed, epoch) and cut into global
    batches of batch_size × nranks; process `rank` takes its slice of every global batch. With `lengths`,
    each run of 16 global batches is sorted by length first (little padding) and the batch order shuffled.
    One process keeps the last, smaller batch; several drop an incomplete last global batch so every
    process takes equal steps. `skip` leaves out the first batches of the epoch (a mid-epoch resume).
    """

    def __init__(self, num_samples, batch_size, *, nranks=1, rank=0, seed=0, shuffle=True, lengths=None):
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.nranks, self.rank, self.seed, self.shuffle = int(nranks), int(rank), int(seed), bool(shuffle)
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = int(epoch), int(skip)

    def global_batches(self, epoch):
        g = self.batch_size * self.nranks
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_samples) if self.shuffle else np.arange(self.num_samples)
        if self.lengths is not None:
            chunk = g * 16
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")]
                                    for c in np.split(order, range(chunk, self.num_samples, chunk))])
        batches = [order[s:s + g] for s in range(0, self.num_samples, g)]
        if self.nranks > 1 and len(batches[-1]) < g:
            batches.pop()
        if self.lengths is not None and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def steps_per_epoch(self):
        g = self.batch_size * self.nranks
        return self.num_samples // g if self.nranks > 1 else -(-self.num_samples // g)

    def __iter__(self):
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in self.global_batches(self.epoch)[self.skip:]:
            yield batch[lo:hi].tolist()

    def __len__(self):
        return self.steps_per_epoch() - self.skip


class SequentialBatches(paddle.io.BatchSampler):
    """Batches 0..n-1 in order (evaluation and prediction)."""

    def __init__(self, num_samples, batch_size):
        self.num_samples, self.batch_size = num_samples, batch_size

    def __iter__(self):
        for s in range(0, self.num_samples, self.batch_size):
            yield list(range(s, min(s + self.batch_size, self.num_samples)))

    def __len__(self):
        return -(-self.num_samples // self.batch_size)
