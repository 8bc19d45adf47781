"""One epoch order: permutation, epoch_order and batches agree."""

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.errors import InputError


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (7, 7), (5, 1)])
def test_batches_cover_each_index_once_in_permutation_order(n, batch_size):
    key = jax.random.key(3)
    x = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    y = np.arange(n) * 10
    order = data.permutation(key, n)
    np.testing.assert_array_equal(order, np.asarray(jax.random.permutation(key, n)))
    assert sorted(order.tolist()) == list(range(n))
    for drop_last in (True, False):
        got = list(data.batches(key, x, y, batch_size=batch_size, drop_last=drop_last))
        full = n - n % batch_size
        sizes = [len(b[0]) for b in got]
        expect = [batch_size] * (n // batch_size) + (
            [] if drop_last or n % batch_size == 0 else [n % batch_size]
        )
        assert sizes == expect
        seen = np.concatenate([b[0][:, 0, 0, 0] for b in got])
        np.testing.assert_array_equal(seen, order[: full if drop_last else n])
        assert len(set(seen.tolist())) == len(seen)
        for bx, by in got:
            assert bx.dtype == np.uint8 and isinstance(bx, np.ndarray)
            np.testing.assert_array_equal(by, bx[:, 0, 0, 0].astype(np.int64) * 10)


def test_batches_new_order_per_epoch_and_images_only():
    key, x = jax.random.key(0), np.arange(64, dtype=np.uint8)
    e0 = np.concatenate(list(data.batches(jax.random.fold_in(key, 0), x, batch_size=8)))
    e1 = np.concatenate(list(data.batches(jax.random.fold_in(key, 1), x, batch_size=8)))
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(64))
    assert not np.array_equal(e0, e1)


def test_batches_rejects_bad_arguments_at_the_call():
    x, key = np.zeros((5, 2, 2, 1), np.uint8), jax.random.key(0)
    with pytest.raises(InputError, match="larger than the 5 examples"):
        data.batches(key, x, batch_size=8)
    assert len(list(data.batches(key, x, batch_size=8, drop_last=False))) == 1
    with pytest.raises(InputError, match="positive"):
        data.batches(key, x, batch_size=0)
    with pytest.raises(InputError, match="5 images but 4 labels"):
        data.batches(key, x, np.zeros(4), batch_size=2)


@pytest.mark.parametrize("epoch", [0, 3])
def test_batches_of_an_epoch_are_the_rows_of_epoch_order(epoch):
    key, n, batch_size = jax.random.key(5), 23, 4
    x = np.arange(n)
    rows = data.epoch_order(key, epoch, n, batch_size=batch_size)
    got = np.stack(list(data.batches(jax.random.fold_in(key, epoch), x, batch_size=batch_size)))
    assert rows.shape == (n // batch_size, batch_size)
    np.testing.assert_array_equal(got, rows)
