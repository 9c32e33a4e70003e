"""SpectrogramViT: the AudioMAE / AST-style ViT over log-mel spectrograms, as a timm VisionTransformer.

AudioMAE's fine-tuned model (Huang et al., "Masked Autoencoders that Listen", NeurIPS 2022) *is* timm's
VisionTransformer on a one-channel, non-square "image": a ``[1, target_length, num_mel_bins]`` filterbank
(time first) cut into 16 x 16 patches (1024 x 128 -> a 64 x 8 grid = 512 tokens, time-major), a class
token, learned-or-fixed position embeddings ``[1, 1 + N, D]`` whose first row belongs to the class token,
timm blocks, and either AudioMAE's fine-tuning head (mean of the patch tokens, ``fc_norm``, linear) or the
class token after ``norm``. So this module only configures timm; nothing is rewritten. State-dict keys are
AudioMAE's (``fc_norm`` and no ``norm`` when ``global_pool``), so its checkpoints load as they are.
"""

from __future__ import annotations

from functools import partial

from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

#: Named configurations (AudioMAE's ``models_vit.py`` sizes; all 16 x 16 patches, qkv bias, LayerNorm eps 1e-6).
CONFIGS = {
    "vit_small_patch16": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch16": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16": dict(embed_dim=1024, depth=24, num_heads=16),
}


class SpectrogramViT(VisionTransformer):
    """A ViT over ``[B, in_chans, target_length, num_mel_bins]`` spectrograms -> logits ``[B, num_classes]``.

    Args:
        target_length: frames (10 ms each) of the input; 1024 for AudioSet, 512 ESC-50, 128 Speech Commands.
        num_mel_bins: mel bins of the input (128 in AudioMAE).
        patch_size: square patch side, in frames and bins; both input sides must be multiples of it.
        in_chans: input channels (1 for a filterbank).
        embed_dim, depth, num_heads, mlp_ratio: transformer size.
        num_classes: output classes (527 for AudioSet).
        global_pool: True: mean of the patch tokens (size-weighted once tokens merge), ``fc_norm``, head
            (AudioMAE's fine-tuning head); False: the class token after ``norm``. timm's own attribute
            ``global_pool`` then reads ``"avg"`` or ``"token"``.
        **kwargs: passed to timm's ``VisionTransformer`` (e.g. ``drop_rate``, ``drop_path_rate``).
    """

    def __init__(
        self,
        target_length: int = 1024,
        num_mel_bins: int = 128,
        patch_size: int = 16,
        in_chans: int = 1,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 527,
        global_pool: bool = True,
        **kwargs,
    ):
        for name, size in (("target_length", target_length), ("num_mel_bins", num_mel_bins)):
            if size % patch_size:
                raise ValueError(f"{name}={size} is not a multiple of patch_size={patch_size}; pad or cut the input.")
        super().__init__(
            img_size=(target_length, num_mel_bins),
            patch_size=patch_size,
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
            **kwargs,
        )
        self.target_length, self.num_mel_bins, self.in_chans = target_length, num_mel_bins, in_chans
        self.arch = dict(
            target_length=target_length,
            num_mel_bins=num_mel_bins,
            patch_size=patch_size,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            num_classes=num_classes,
            global_pool=global_pool,
        )

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


#: The embedded spoken-words models: 128 frames x 128 mel bins in 16 x 16 patches (64 tokens + class), 10 words.
EMBEDDED_ARCH = dict(
    target_length=128, num_mel_bins=128, patch_size=16, embed_dim=128, depth=6, num_heads=4, mlp_ratio=4.0
)


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
