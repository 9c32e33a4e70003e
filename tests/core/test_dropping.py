"""Random token dropping: same interface as matching, drops exactly r non-protected tokens."""

import torch

from tokenmerge.core import merge_source, merge_wavg, random_token_dropping, unmerge_with_source


def test_drops_r_tokens_keeps_protected_and_order():
    x = torch.arange(30.0).view(1, 30, 1).expand(4, -1, 3).contiguous()
    d = random_token_dropping(x, 10, protected=2, generator=torch.Generator().manual_seed(0))
    kept = d.merge(x)
    assert kept.shape == (4, 20, 3)
    assert torch.equal(kept[:, :2], x[:, :2])
    assert (kept[:, 1:, 0].diff(dim=1) > 0).all()  # position order kept
    assert not torch.equal(kept[0], kept[1])  # independent draws per sample


def test_dropped_tokens_lose_their_size_and_unmerge_to_zero():
    x = torch.randn(2, 21, 4)
    d = random_token_dropping(x, 10, protected=1)
    merged, size = merge_wavg(d, x)
    assert torch.equal(size.sum(1), torch.full((2, 1), 11.0))
    source = merge_source(d, x)
    restored = unmerge_with_source(merged, source)
    assert (restored.abs().sum(-1) == 0).sum(1).eq(10).all()
    torch.testing.assert_close(d.unmerge(merged), restored)


def test_clamped_like_tome():
    assert random_token_dropping(torch.randn(1, 11, 2), 50, protected=1).r == 5
