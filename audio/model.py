"""SpectrogramViT: the AudioMAE / AST-style ViT over log-mel spectrograms, as a timm VisionTransformer.

AudioMAE's fine-tuned model (Huang et al., "Masked Autoencoders that Listen", NeurIPS 2022) *is* timm's
VisionTransformer on a one-channel, non-square "image": a ``[1, target_length, num_mel_bins]`` filterbank
(time first) cut into 16 x 16 patches (1024 x 128 -> a 64 x 8 grid = 512 tokens, time-major), a class
token, learned-or-fixed position embeddings ``[1, 1 + N, D]`` whose first row belongs to the class token,
timm blocks, and either AudioMAE's fine-tuning head (mean of the patch tokens, ``fc_norm``, linear) or the
class token after ``norm``. So this module only configures timm; nothing is rewritten but the patch embedding of
patches that span every mel bin (:class:`~tokenmerge.audio.patch_embed.SpectrumPatchEmbed`: the same sums, as one
matrix product). State-dict keys are AudioMAE's (``fc_norm`` and no ``norm`` when ``global_pool``), so its
checkpoints load as they are.

AudioMAE fine-tunes with patch masking (``mask_t_prob`` / ``mask_f_prob``): in training, each sample keeps a random
subset of the time columns and of the frequency rows of its patch grid (:class:`PatchGridMasking`). It takes timm's
``patch_drop`` slot (after the position embeddings, before the blocks), which the model's own forward and the
Token Merging patch (:class:`tokenmerge.adapters.TimmViTAdapter` ``embed``) both run, so a merging model trains on
the masked tokens too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from .patch_embed import SpectrumPatchEmbed

#: Named configurations (AudioMAE's ``models_vit.py`` sizes; all 16 x 16 patches, qkv bias, LayerNorm eps 1e-6).
CONFIGS = {
    "vit_small_patch16": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch16": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16": dict(embed_dim=1024, depth=24, num_heads=16),
}


def kept_lines(lines: int, mask_prob: float) -> int:
    """Time columns (or frequency rows) of ``lines`` that AudioMAE's 2-D masking keeps: ``int(lines * (1 - p))``,
    rounded down (facebookresearch/AudioMAE models_vit.py:120 and 133), e.g. 51 of 64 and 6 of 8 at p = 0.2."""
    return int(lines * (1 - mask_prob))


class PatchGridMasking(nn.Module):
    """AudioMAE's fine-tuning patch masking (``--mask_2d True``): drop whole time columns and frequency rows.

    In training, each sample keeps :func:`kept_lines` ``(T, mask_t_prob)`` of the T time columns and ``(F,
    mask_f_prob)`` of the F frequency rows of its patch grid, both drawn uniformly (the ones with the smallest
    ``torch.rand`` noise, from torch's global generator: first the columns, then the rows) and kept in the drawn
    order, time-major: ``[B, prefix + T x F, D] -> [B, prefix + T' x F', D]``. The class (prefix) tokens always
    stay. The tokens come in with their position embeddings already added, so every kept patch keeps its own.
    That is AudioMAE's ``random_masking_2d`` (facebookresearch/AudioMAE models_vit.py:88-145) as
    ``forward_features_mask`` calls it (lines 148-160: patch embedding, + ``pos_embed[:, 1:]``, masking, then the
    class token + ``pos_embed[:, :1]`` in front) whenever either probability is above 0 (line 179). In eval mode,
    or with both probabilities 0, the tokens pass unchanged (AudioMAE's evaluation never masks:
    engine_finetune_as.py:55 passes the probabilities in training only).

    Args:
        grid: (T, F) patch grid of the model's input.
        mask_t_prob, mask_f_prob: fraction of time columns / frequency rows dropped, in [0, 1).
        num_prefix_tokens: leading tokens (class token) that are never dropped.
    """

    def __init__(self, grid: tuple[int, int], mask_t_prob: float = 0.0, mask_f_prob: float = 0.0, num_prefix_tokens=1):
        super().__init__()
        for name, prob, lines in (("mask_t_prob", mask_t_prob, grid[0]), ("mask_f_prob", mask_f_prob, grid[1])):
            if not 0 <= prob < 1:
                raise ValueError(f"{name}={prob!r} must be in [0, 1): the fraction of patch lines dropped in training.")
            if kept_lines(lines, prob) < 1:
                raise ValueError(f"{name}={prob} keeps none of the {lines} patch lines of a {grid[0]} x {grid[1]} grid")
        self.grid, self.num_prefix_tokens = tuple(grid), num_prefix_tokens
        self.mask_t_prob, self.mask_f_prob = float(mask_t_prob), float(mask_f_prob)

    @property
    def kept_grid(self) -> tuple[int, int]:
        """(T', F'): the time columns and frequency rows a training forward keeps."""
        return kept_lines(self.grid[0], self.mask_t_prob), kept_lines(self.grid[1], self.mask_f_prob)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, mask_t_prob={self.mask_t_prob}, mask_f_prob={self.mask_f_prob}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or (self.mask_t_prob == 0 and self.mask_f_prob == 0):
            return x
        prefix, patches = x[:, : self.num_prefix_tokens], x[:, self.num_prefix_tokens :]
        (rows_t, rows_f), (keep_t, keep_f) = self.grid, self.kept_grid
        batch, dim = x.shape[0], x.shape[-1]
        patches = patches.reshape(batch, rows_t, rows_f, dim)
        columns = torch.rand(batch, rows_t, device=x.device).argsort(dim=1)[:, :keep_t]
        patches = patches.gather(1, columns[:, :, None, None].expand(-1, -1, rows_f, dim))
        rows = torch.rand(batch, rows_f, device=x.device).argsort(dim=1)[:, :keep_f]
        patches = patches.gather(2, rows[:, None, :, None].expand(-1, keep_t, -1, dim))
        return torch.cat([prefix, patches.reshape(batch, keep_t * keep_f, dim)], dim=1)


class SpectrogramViT(VisionTransformer):
    """A ViT over ``[B, in_chans, target_length, num_mel_bins]`` spectrograms -> logits ``[B, num_classes]``.

    Args:
        target_length: frames (10 ms each) of the input; 1024 for AudioSet, 512 ESC-50, 128 Speech Commands.
        num_mel_bins: mel bins of the input (128 in AudioMAE).
        patch_size: patch side in frames and bins (AudioMAE: 16), or (frames, bins) for a rectangular patch, such as
            the embedded model's (2, 128): two frames of the whole spectrum per token; the input sides must be
            multiples of the patch's.
        in_chans: input channels (1 for a filterbank).
        embed_dim, depth, num_heads, mlp_ratio: transformer size.
        num_classes: output classes (527 for AudioSet).
        global_pool: True: mean of the patch tokens (size-weighted once tokens merge), ``fc_norm``, head
            (AudioMAE's fine-tuning head); False: the class token after ``norm``. timm's own attribute
            ``global_pool`` then reads ``"avg"`` or ``"token"``.
        mask_t_prob, mask_f_prob: AudioMAE's fine-tuning patch masking: the fraction of the patch grid's time
            columns and frequency rows each training forward drops (:class:`PatchGridMasking`, in ``patch_drop``);
            0 and 0 (default): none. Never in eval mode. A training setting, not architecture: not in ``arch``.
        **kwargs: passed to timm's ``VisionTransformer`` (e.g. ``drop_rate``, ``drop_path_rate``).
    """

    def __init__(
        self,
        target_length: int = 1024,
        num_mel_bins: int = 128,
        patch_size: int | Sequence[int] = 16,
        in_chans: int = 1,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 527,
        global_pool: bool = True,
        mask_t_prob: float = 0.0,
        mask_f_prob: float = 0.0,
        **kwargs,
    ):
        patch = patch_shape(patch_size)
        for name, size, side in (("target_length", target_length, patch[0]), ("num_mel_bins", num_mel_bins, patch[1])):
            if size % side:
                raise ValueError(f"{name}={size} is not a multiple of the patch's {side}; pad or cut the input.")
        super().__init__(
            img_size=(target_length, num_mel_bins),
            patch_size=patch,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            num_classes=num_classes,
            global_pool="avg" if global_pool else "token",
            class_token=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            embed_layer=SpectrumPatchEmbed,
            **kwargs,
        )
        self.target_length, self.num_mel_bins, self.in_chans = target_length, num_mel_bins, in_chans
        self.arch = dict(
            target_length=target_length,
            num_mel_bins=num_mel_bins,
            patch_size=patch_size if isinstance(patch_size, int) else list(patch),
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            num_classes=num_classes,
            global_pool=global_pool,
        )
        if mask_t_prob or mask_f_prob:
            if kwargs.get("patch_drop_rate"):
                raise ValueError("Give patch_drop_rate or mask_t_prob / mask_f_prob, not both: they share patch_drop.")
            self.patch_drop = PatchGridMasking(self.grid, mask_t_prob, mask_f_prob, self.num_prefix_tokens)

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (time, frequency), e.g. (64, 8) for 1024 x 128 inputs."""
        return tuple(self.patch_embed.grid_size)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that says what to do unless ``x`` is ``[B, in_chans, target_length, num_mel_bins]``."""
        expected = (self.in_chans, self.target_length, self.num_mel_bins)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SpectrogramViT expects [B, {', '.join(map(str, expected))}] (batch, channels, frames, mel bins); "
                f"got {list(x.shape)}. Make features with tokenmerge.audio.fbank(waveform, sample_rate, "
                f"target_length={self.target_length}, num_mel_bins={self.num_mel_bins}) and stack them."
            )

    def forward_features(self, x: Tensor, **kwargs) -> Tensor:
        """[B, C, T, F] -> tokens [B, 1 + N, D] after the last block (and ``norm`` when class-token pooled)."""
        self.check_input(x)
        return super().forward_features(x, **kwargs)


#: The embedded spoken-words models: 128 frames x 128 mel bins in (2, 128) patches (64 time tokens + class), 10 words.
#: A token holds 20 ms of the whole spectrum, as the Keyword Transformer tokenizes speech (Berg et al., Interspeech
#: 2021, "Keyword Transformer", Sec. 3.1: one token per time frame of all frequencies); trained from scratch, such
#: tokens learn the words far sooner than 16 x 16 patches (tokenmerge.audio.train_embedded's docstring).
EMBEDDED_ARCH = dict(
    target_length=128, num_mel_bins=128, patch_size=(2, 128), embed_dim=128, depth=6, num_heads=4, mlp_ratio=4.0
)


def patch_shape(patch_size: int | Sequence[int]) -> tuple[int, int]:
    """(frames, mel bins) of a patch: ``16`` -> (16, 16), ``(2, 128)`` / ``[2, 128]`` -> (2, 128)."""
    if isinstance(patch_size, int):
        return patch_size, patch_size
    shape = tuple(int(side) for side in patch_size)
    if len(shape) != 2:
        raise ValueError(f"patch_size must be an int or (frames, mel bins); got {patch_size!r}.")
    return shape


def create_model(name: str = "embedded", *, num_classes: int | None = None, **kwargs) -> SpectrogramViT:
    """A randomly initialised SpectrogramViT; weights come from ``load_checkpoint`` / ``load_pretrained_encoder``.

    Args:
        name: ``"embedded"`` (:data:`EMBEDDED_ARCH`, 10 classes) or a named AudioMAE size (:data:`CONFIGS`).
        num_classes: outputs of the head (default: 10 for the embedded task, else the constructor's).
        **kwargs: any other constructor argument (``target_length``, ``global_pool``, ``drop_path_rate``, ...).

    Example:
        >>> model = create_model("vit_base_patch16", num_classes=527)  # AudioMAE's AudioSet model, 512 tokens
    """
    if name == "embedded":
        base = {**EMBEDDED_ARCH, "num_classes": 10}
    elif name in CONFIGS:
        base = CONFIGS[name]
    else:
        raise ValueError(f"Unknown audio model {name!r}; choose 'embedded' or one of {sorted(CONFIGS)}.")
    classes = {} if num_classes is None else {"num_classes": num_classes}
    return SpectrogramViT(**{**base, **classes, **kwargs})
