"""The row helpers equal torch's gather / scatter_add / scatter along the token dimension."""

import torch

from tokenmerge.core.rows import add_tokens_, gather_tokens, put_tokens_


def test_gather_tokens_equals_gather_on_a_strided_input():
    torch.manual_seed(0)
    x = torch.randn(3, 11, 5)[:, 1::2]  # a strided view, as set A is
    index = torch.randint(0, x.shape[1], (3, 4, 1))
    assert torch.equal(gather_tokens(x, index), x.gather(1, index.expand(-1, -1, 5)))
    assert torch.equal(gather_tokens(x, index[..., 0]), gather_tokens(x, index))


def test_add_tokens_accumulates_repeated_indices_per_sample():
    torch.manual_seed(1)
    out = torch.randn(2, 6, 3, dtype=torch.float64)
    index = torch.tensor([[0, 0, 5], [2, 3, 2]])[..., None]
    src = torch.randn(2, 3, 3, dtype=torch.float64)
    expected = out.scatter_add(1, index.expand(-1, -1, 3), src)
    assert torch.equal(add_tokens_(out, index, src), expected)


def test_put_tokens_writes_each_sample_in_its_own_rows():
    out = torch.zeros(2, 4, 2)
    index = torch.tensor([[3, 1], [0, 2]])
    src = torch.arange(8.0).reshape(2, 2, 2)
    expected = torch.zeros(2, 4, 2).scatter(1, index[..., None].expand(-1, -1, 2), src)
    assert torch.equal(put_tokens_(out, index, src), expected)
