"""``check_adapter``: does an adapter drive its model exactly, and which piece is missing or wrong if not?

A layout that misses a piece can still pass a plain r=0 comparison when the weights are random: LayerScale starts
at 1 (or 1e-5), a rotary embedding barely moves random projections. So the check runs on a copy of the model in
float64 with every parameter perturbed, compares the patched model at r=0 with the unpatched one (its final output
and every block's output on the block's own input), names the block parameters the layout never uses (those that
get a gradient through the block's own forward but not through the re-driven one), checks that a merged forward
(r > 0) runs with sizes summing to the token count and r fewer tokens per block, and that ``remove()`` restores
the model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tokenmerge.core import ModelAdapter, TokenState, patch_model

__all__ = ["AdapterReport", "check_adapter"]


@dataclass
class AdapterReport:
    """What :func:`check_adapter` found.

    Attributes:
        max_difference: largest |patched r=0 - unpatched| over the model's output (float64, perturbed weights);
            NaN when the adapter's head returns something else than the model does (compared block by block only).
        block_differences: the same per block, each block run on the input the unpatched model gave it.
        tokens_per_block: tokens after each block of the merged forward.
        problems: what is wrong, each with what to do; empty when the adapter is exact.
    """

    max_difference: float
    block_differences: list[float]
    tokens_per_block: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        blocks = max(self.block_differences, default=0.0)
        if math.isnan(self.max_difference):
            head = f"r=0: the head returns its own output; blocks differ by at most {blocks:.3g}"
        else:
            head = f"r=0: max |patched - unpatched| = {self.max_difference:.3g} (blocks: {blocks:.3g})"
        lines = [f"{head}; tokens per block at r>0: {self.tokens_per_block}"]
        return "\n".join(lines + [f"problem: {p}" for p in self.problems] + (["adapter OK"] if self.ok else []))


def _first_tensor(output):
    """The main tensor of an output: itself, the first element of a tuple (Hugging Face layers) or the first value
    of a mapping (a Hugging Face ``ModelOutput``: ``last_hidden_state``)."""
    if isinstance(output, Mapping):
        return next(iter(output.values()))
    return output[0] if isinstance(output, (tuple, list)) else output


def _perturbed_copy(model: nn.Module, seed: int) -> nn.Module:
    """A float64 copy in eval mode with every parameter moved by noise of its own scale (plus 0.05)."""
    twin = copy.deepcopy(model).double().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in twin.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.add_(noise * (0.1 * parameter.abs().mean() + 0.05))
    return twin


def _batch_first(block: nn.Module, tokens: Tensor) -> Tensor:
    """Tokens as the block received or returned them -> [B, N, C] (a block whose ``nn.MultiheadAttention`` is not
    ``batch_first``, as in ``nn.TransformerEncoderLayer(batch_first=False)``, takes [N, B, C])."""
    attention = [m for m in block.modules() if isinstance(m, nn.MultiheadAttention)]
    return tokens.transpose(0, 1) if attention and not attention[0].batch_first else tokens


def _block_io(model: nn.Module, blocks, inputs: Tensor, kwargs: dict) -> tuple[Tensor, list[tuple]]:
    """The unpatched output and, per block, (args, kwargs, input tokens [B, N, C], output tokens [B, N, C])."""
    calls: list[tuple] = [None] * len(blocks)
    hooks = []
    for i, block in enumerate(blocks):

        def record(module, args, kw, output, i=i):
            tokens = _batch_first(module, args[0]).detach()
            calls[i] = (args, kw, tokens, _batch_first(module, _first_tensor(output)).detach())

        hooks.append(block.register_forward_hook(record, with_kwargs=True))
    try:
        with torch.no_grad():
            output = model(inputs, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return _first_tensor(output), calls


def _unused_parameters(block: nn.Module, index: int, call: tuple, adapter: ModelAdapter, handle, mask) -> list[str]:
    """Block parameters that the block's own forward uses (nonzero gradient) and the re-driven forward does not."""
    args, kw, tokens, _ = call

    def used(run) -> set[str]:
        block.zero_grad(set_to_none=True)
        run().pow(2).sum().backward()
        return {name for name, p in block.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    own = used(lambda: _first_tensor(block(args[0].detach(), *args[1:], **kw)))
    redriven = used(lambda: _redriven(adapter, block, index, tokens, handle, mask))
    block.zero_grad(set_to_none=True)
    return sorted(own - redriven)


def _redriven(adapter: ModelAdapter, block: nn.Module, index: int, x: Tensor, handle, mask: Tensor | None) -> Tensor:
    """Block ``index`` re-driven by the adapter at r=0 on tokens [B, N, C] (``mask`` [B, N]: 0 for padding), at the
    adapter's token positions where it has them (RoPE)."""
    state = TokenState.start(x, mask)
    state.positions = adapter.token_positions(handle.model, x)
    rotary = adapter.rotary(handle.model, index)
    return adapter.block_forward(
        block, x, state, 0, protected=handle.protected, prop_attn=True, method="tome", groups=1, rotary=rotary
    )


def _passed_in(call: tuple) -> list[str]:
    """The tensors a model hands its block besides the tokens (a rotary embedding, a position bias), by name."""
    args, kw = call[0], call[1]
    names = [f"argument {i + 1}" for i, a in enumerate(args[1:]) if isinstance(a, Tensor)]
    return names + [name for name, value in kw.items() if isinstance(value, Tensor)]


def check_adapter(
    model: nn.Module,
    adapter: ModelAdapter,
    example_input: Tensor,
    *,
    r: int | None = None,
    tolerance: float = 1e-9,
    seed: int = 0,
    **forward_kwargs,
) -> AdapterReport:
    """Check ``adapter`` on ``model`` (never changed: a perturbed float64 copy is used) with ``example_input``.

    Args:
        model: the unpatched model.
        adapter: the adapter to check (its ``check`` runs first, as in ``patch_model``).
        example_input: a small batch of what the model takes (images [B, 3, H, W], token ids [B, N], ...);
            floating inputs are cast to float64 with the copy.
        r: tokens merged per block for the merged forward (default: an eighth of the tokens, at least 1).
        tolerance: the largest r=0 difference that counts as exact (float64).
        seed: the perturbation's seed.
        **forward_kwargs: passed to every forward (e.g. ``attention_mask=``).

    Returns:
        An :class:`AdapterReport`; ``str(report)`` says what was found and what to fix.

    Raises:
        ValueError: the model is patched already (check the unpatched model).
    """
    if "forward" in model.__dict__:
        raise ValueError(
            f"check_adapter compares the adapter with the model's own forward, but this {type(model).__name__} is "
            "patched already (its forward is an instance attribute): call handle.remove() first."
        )
    twin = _perturbed_copy(model, seed)
    inputs = example_input.double() if example_input.is_floating_point() else example_input
    blocks = list(adapter.blocks(twin))
    reference, calls = _block_io(twin, blocks, inputs, forward_kwargs)
    problems: list[str] = []
    handle = patch_model(twin, adapter, 0)
    with torch.no_grad():
        patched = _first_tensor(twin(inputs, **forward_kwargs))
        embedded = adapter.embed(twin, inputs)
    mask = forward_kwargs.get("attention_mask")
    comparable = isinstance(patched, Tensor) and isinstance(reference, Tensor) and patched.shape == reference.shape
    difference = (patched - reference).abs().max().item() if comparable else float("nan")
    block_differences = []
    for i, (block, call) in enumerate(zip(blocks, calls)):
        if call is None:
            problems.append(f"block {i} was never called by the unpatched model: is adapter.blocks the model's blocks?")
            block_differences.append(float("inf"))
            continue
        with torch.no_grad():
            redriven = _redriven(adapter, block, i, call[2], handle, mask)
            block_differences.append((redriven - call[3]).abs().max().item())
    first_input = calls[0][2] if calls and calls[0] is not None else None
    if first_input is not None and (
        first_input.shape != embedded.shape or not torch.allclose(embedded, first_input, atol=tolerance, rtol=0)
    ):
        problems.append(
            "adapter.embed differs from what the model feeds its first block: check the patch embedding, class and "
            "other prefix tokens, position embeddings (and their order)."
        )
    wrong = [i for i, d in enumerate(block_differences) if d > tolerance]
    if wrong:
        first = wrong[0]
        unused = _unused_parameters(blocks[first], first, calls[first], adapter, handle, mask)
        passed = _passed_in(calls[first])
        if unused:
            detail = f"the layout never uses {', '.join(unused)}"
        elif passed and adapter.rotary(twin, first) is None:
            detail = (
                f"the model hands the block {', '.join(passed)} besides its tokens (a rotary embedding or a position "
                "bias?) and the adapter gives none: for RoPE give the adapter token_positions and rotary"
            )
        else:
            detail = "check the layout's paths and norm_first"
        problems.append(
            f"block {first} re-driven at r=0 differs from its own forward by {block_differences[first]:.3g} "
            f"({len(wrong)} of {len(blocks)} blocks differ): {detail}."
        )
    elif difference > tolerance:
        problems.append(
            f"every block matches but the output differs by {difference:.3g}: check adapter.embed, finish (the final "
            "norm) and head (pooling by size, the classifier)."
        )
    handle.remove()
    tokens = embedded.shape[1]
    r = r if r is not None else max(1, tokens // 8)
    handle = patch_model(twin, adapter, r)
    tokens_per_block = handle.tokens_per_layer(tokens)
    with torch.no_grad():
        merged, state = handle.forward_tokens(inputs, attention_mask=mask)
        twin(inputs, **forward_kwargs)
    real = torch.full((merged.shape[0],), tokens) if mask is None else mask.sum(1)
    sizes = state.size.sum(1).squeeze(-1) if state.size is not None else torch.full((merged.shape[0],), tokens)
    if merged.shape[1] != tokens_per_block[-1]:
        problems.append(
            f"the merged forward ends with {merged.shape[1]} tokens, the schedule says {tokens_per_block[-1]}."
        )
    if not torch.allclose(sizes.double(), torch.as_tensor(real, dtype=torch.float64)):
        problems.append(
            f"merged sizes sum to {sizes.tolist()}, not the real tokens the model started with {real.tolist()}."
        )
    handle.remove()
    with torch.no_grad():
        restored = _first_tensor(twin(inputs, **forward_kwargs))
    if not torch.equal(_first_tensor(restored), reference):
        problems.append("after handle.remove() the model does not compute what it did before the patch.")
    return AdapterReport(difference, block_differences, tokens_per_block, problems)
