"""The patched models equal a plain transcription of the paper at r > 0, in float64.

ToMe (Bolya et al., ICLR 2023, arXiv 2210.09461), Sec. 3 and Algorithm 1: :mod:`tests.core.paper_reference`
recomputes every block one sample at a time from the model's own parameters (attention with Eq. 1's log-size
term, keys averaged over heads as the metric, bipartite soft matching, size-weighted merges, the
``[protected | unmerged A | B]`` layout, size-weighted pooling). Each case merges in every block, so a wrong
metric, weight, order or bias changes the result; the final token count is checked so no case runs at r = 0.
"""

import ast
from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

import tokenmerge.image
import tokenmerge.video
from tokenmerge.core import patch_model

from . import paper_reference
from .bert_layout import BertMeanPooled, tiny_bert

EXACT = dict(rtol=1e-10, atol=1e-10)


@torch.no_grad()
def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights that make merges matter: scaled linears, norms and LayerScale away from their init, and
    random class/register tokens and position embeddings. Returns the model in float64 and eval mode."""
    gen = torch.Generator().manual_seed(seed)

    def randn(p: torch.Tensor) -> torch.Tensor:
        return torch.randn(p.shape, generator=gen, dtype=p.dtype)

    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, nn.LayerNorm):
                p.copy_(1 + 0.3 * randn(p) if name == "weight" else 0.2 * randn(p))
            elif isinstance(module, nn.Linear) and name == "weight":
                p.copy_(randn(p) / module.in_features**0.5)
            elif name == "gamma":
                p.copy_(0.5 * randn(p))
            elif p.dim() == 1:
                p.copy_(0.1 * randn(p))
            elif p.dim() == 3:  # class/register tokens, position tables
                p.copy_(0.5 * randn(p))
    return model.double().eval()


def _assert_same(library: tuple, reference: tuple, num_tokens: int) -> None:
    """(tokens [B, N', C], size [B, N'], output [B, K]) of the library and of the reference agree."""
    (tokens, size, out), (ref_tokens, ref_size, ref_out) = library, reference
    assert tokens.shape[1] == ref_tokens.shape[1] == num_tokens
    torch.testing.assert_close(size, ref_size, **EXACT)
    torch.testing.assert_close(tokens, ref_tokens, **EXACT)
    torch.testing.assert_close(out, ref_out, **EXACT)


def _vit(depth: int = 3, **kwargs) -> VisionTransformer:
    """A 32x32, patch-4 ViT (64 patches), width 32, 2 heads, random float64 weights."""
    torch.manual_seed(0)
    model = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=32, depth=depth, num_heads=2, mlp_ratio=2.0, num_classes=7, **kwargs
    )
    return _randomize(model, seed=1)


VIT_CASES = {
    "class-token": dict(),
    "avg-pool": dict(class_token=False, global_pool="avg"),
    "avg-pool-with-class-token": dict(global_pool="avg"),
    "layerscale-qk-norm": dict(init_values=0.1, qk_norm=True),
    "class-and-registers-p5": dict(reg_tokens=4),
    "registers-only-p4": dict(reg_tokens=4, class_token=False, global_pool="avg"),
}
ATTENTION = {"proportional-mask": (True, "mask"), "proportional-folded": (True, "folded"), "plain": (False, "mask")}


@pytest.mark.parametrize("attention", list(ATTENTION))
@pytest.mark.parametrize("case", list(VIT_CASES))
@torch.no_grad()
def test_timm_vit_equals_the_paper(case, attention):
    prop_attn, kernel = ATTENTION[attention]
    model = _vit(**VIT_CASES[case])
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    reference = paper_reference.timm_vit(model, images, [8, 8, 8], prop_attn)
    handle = tokenmerge.image.apply_patch(model, r=8, prop_attn=prop_attn, attention=kernel)
    tokens, state = handle.forward_tokens(images)
    num_tokens = model.num_prefix_tokens + 64 - 3 * 8
    _assert_same((tokens, state.size[..., 0], model(images)), reference, num_tokens)


@torch.no_grad()
def test_timm_vit_with_a_schedule_that_clamps_equals_the_paper():
    model = _vit(depth=4, init_values=0.1, qk_norm=True)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    schedule = [8, 8, 0, 30]  # the last block can remove only (49 - 1) // 2 = 24 tokens
    reference = paper_reference.timm_vit(model, images, schedule, prop_attn=True)
    handle = tokenmerge.image.apply_patch(model, r=schedule)
    tokens, state = handle.forward_tokens(images)
    _assert_same((tokens, state.size[..., 0], model(images)), reference, num_tokens=1 + 64 - 8 - 8 - 24)


VIDEO_CASES = {
    "spacetime": dict(scope="spacetime", cls_embed=True, prop_attn=True, attention="mask"),
    "spacetime-no-class-token-plain": dict(scope="spacetime", cls_embed=False, prop_attn=False, attention="mask"),
    "frame": dict(scope="frame", cls_embed=True, prop_attn=True, attention="folded"),
    "frame-no-class-token": dict(scope="frame", cls_embed=False, prop_attn=True, attention="mask"),
}


@pytest.mark.parametrize("case", list(VIDEO_CASES))
@torch.no_grad()
def test_spatiotemporal_vit_equals_the_paper(case):
    settings = VIDEO_CASES[case]
    torch.manual_seed(0)
    model = tokenmerge.video.SpatiotemporalViT(
        num_frames=4,
        t_patch_size=2,
        img_size=16,
        patch_size=4,
        embed_dim=32,
        depth=3,
        num_heads=2,
        mlp_ratio=2.0,
        num_classes=5,
        cls_embed=settings["cls_embed"],
    )
    model = _randomize(model, seed=4)
    clips = torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    schedule = [8, 0, 30]  # 2 time slices of 16: frame scope 4, 0 and then (clamped) 6 per slice
    reference = paper_reference.spatiotemporal_vit(model, clips, schedule, settings["prop_attn"], settings["scope"])
    handle = tokenmerge.video.apply_patch(
        model,
        r=schedule,
        merge_scope=settings["scope"],
        prop_attn=settings["prop_attn"],
        attention=settings["attention"],
    )
    tokens, state = handle.forward_tokens(clips)
    _assert_same((tokens, state.size[..., 0], model(clips)), reference, num_tokens=int(settings["cls_embed"]) + 12)


def _padded_batch(lengths=(16, 13, 10), width=16):
    """Token ids [B, width] (class token first, padding after each length) and the 0/1 mask.

    With the schedule [5, 4, 30] the padded rows merge padding into padding, real into real and, in the last block,
    padding into a real token; no tie between padding edges falls on the cut of the r best edges, so which padding
    token merges never moves a real token."""
    ids = torch.randint(5, 100, (len(lengths), width), generator=torch.Generator().manual_seed(6))
    ids[:, 0] = 1
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


@pytest.mark.parametrize("attention", list(ATTENTION))
@torch.no_grad()
def test_padded_bert_equals_the_paper(attention):
    prop_attn, kernel = ATTENTION[attention]
    model = _randomize(tiny_bert(), seed=7)
    ids, mask = _padded_batch()
    ref_tokens, ref_size, ref_pooled = paper_reference.bert_mean_pooled(model, ids, mask, [5, 4, 30], prop_attn)
    handle = patch_model(model, BertMeanPooled(), r=[5, 4, 30], prop_attn=prop_attn, attention=kernel)
    tokens, state = handle.forward_tokens(ids, attention_mask=mask)
    size = state.size[..., 0]
    assert tokens.shape[1] == ref_tokens.shape[1] == 16 - 5 - 4 - 3  # the last layer clamped to (7 - 1) // 2
    assert (size > 1).any(1).all() and ((size == 0).sum(1) < (mask == 0).sum(1))[1:].all()  # both kinds merged
    torch.testing.assert_close(size, ref_size, **EXACT)
    real = ref_size > 0  # padding carries no content: only real tokens' features are defined
    torch.testing.assert_close(tokens[real], ref_tokens[real], **EXACT)
    torch.testing.assert_close(model(ids, attention_mask=mask), ref_pooled, **EXACT)


def test_the_reference_shares_no_code_with_the_library():
    tree = ast.parse(Path(paper_reference.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "math", "collections.abc", "dataclasses", "torch"}
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "scaled_dot_product_attention" not in names
