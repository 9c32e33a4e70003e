"""Random draws for the random baselines (random merging, random dropping), reproducible per sample.

A baseline's numbers must not depend on how samples are batched, ordered or split over processes. With a seed,
every sample gets its own ``torch.Generator``, seeded from the seed and the sample's own content, and draws its
numbers from it: a sample draws the same numbers alone, in any batch, on any rank. Without a seed the draws
come from torch's global generator, as any torch layer's would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

#: One generator, one per sample, or None (torch's global generator).
Generators = torch.Generator | Sequence[torch.Generator] | None


def uniform(rows: int, *shape: int, generator: Generators = None, device=None) -> Tensor:
    """[rows, *shape] draws from U[0, 1).

    Args:
        rows: the leading dimension (samples, or samples x groups for a merge scope).
        shape: the per-row shape.
        generator: None (the global generator), one generator, or one per sample: then ``rows`` is a multiple k of
            their count and generator i draws rows i*k .. (i+1)*k - 1.
        device: where the draws are made.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(rows, *shape, generator=generator, device=device)
    if rows % len(generator):
        raise ValueError(f"{rows} rows of draws cannot be split among {len(generator)} per-sample generators.")
    per_sample = rows // len(generator)
    return torch.cat([torch.rand(per_sample, *shape, generator=g, device=device) for g in generator])


def sample_generators(seed: int, inputs: Tensor | Mapping[str, Tensor], device=None) -> list[torch.Generator]:
    """One generator per sample of ``inputs``, seeded from ``seed`` and a digest of the sample's bytes.

    Args:
        seed: the setting's seed (different seeds give independent draws).
        inputs: [B, ...] model inputs, or a mapping of such tensors (all with the same B).
        device: the device the generators draw on.
    """
    tensors = list(inputs.values()) if isinstance(inputs, Mapping) else [inputs]
    tensors = [t.detach().cpu().contiguous() for t in tensors if isinstance(t, Tensor)]  # one copy per tensor
    batch = tensors[0].shape[0]
    generators = []
    for i in range(batch):
        digest = hashlib.blake2b(int(seed).to_bytes(8, "little", signed=True), digest_size=8)
        for tensor in tensors:
            digest.update(tensor[i].reshape(-1).view(torch.uint8).numpy().tobytes())
        generator = torch.Generator(device=device)
        generator.manual_seed(int.from_bytes(digest.digest(), "little") >> 1)
        generators.append(generator)
    return generators
