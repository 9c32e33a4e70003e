"""A spatiotemporal ViT in the layout of MAE-ST (Feichtenhofer et al., "Masked Autoencoders As Spatiotemporal
Learners", NeurIPS 2022; facebookresearch/mae_st ``models_vit.py`` and ``util/video_vit.py``).

The clip [B, 3, T, H, W] is cut into tubelets of ``t_patch_size`` frames x ``patch_size``^2 pixels by a Conv3d,
giving T' = T / t_patch_size time slices of H' x W' patches, laid out time-major: token ``t * H'W' + s`` is
patch s of slice t. Position embeddings are either separate (a spatial table [1, H'W', C] repeated over time
plus a temporal table [1, T', C] repeated over space, and ``pos_embed_class`` for the class token) or one
joint table. The blocks are timm's ``Block`` (so Token Merging drives the same block code as for images).
The head is MAE-ST's fine-tuning head: mean of the patch tokens, LayerNorm, dropout, linear.

Difference from MAE-ST: without a class token (``cls_embed=False``) MAE-ST's head still skips the first
token (``x[:, 1:]``); here the mean is over all patch tokens. Fine-tuned MAE-ST checkpoints have a class
token, where both agree.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn


class TubeletEmbed(nn.Module):
    """Clip [B, C_in, T, H, W] -> tokens [B, T' * H' * W', C] (time-major) with a Conv3d of stride = kernel.

    Attributes:
        grid_size: (T', H', W').
        num_patches: T' * H' * W'.
    """

    def __init__(self, num_frames: int, t_patch_size: int, img_size: int, patch_size: int, in_chans: int, dim: int):
        super().__init__()
        if num_frames % t_patch_size or img_size % patch_size:
            raise ValueError(
                f"num_frames ({num_frames}) must be a multiple of t_patch_size ({t_patch_size}) and img_size "
                f"({img_size}) a multiple of patch_size ({patch_size})."
            )
        self.input_size = (num_frames, img_size, img_size)
        self.grid_size = (num_frames // t_patch_size, img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        kernel = (t_patch_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != self.input_size or x.shape[1] != self.proj.in_channels:
            raise ValueError(
                f"Expected clips of shape [B, {self.proj.in_channels}, {', '.join(map(str, self.input_size))}] "
                f"(batch, channels, frames, height, width); got {tuple(x.shape)}."
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class SpatiotemporalViT(nn.Module):
    """Video ViT with MAE-ST's layout; input [B, in_chans, num_frames, img_size, img_size], logits [B, num_classes].

    Args:
        num_frames, t_patch_size: frames per clip and per tubelet (T' = num_frames / t_patch_size).
        img_size, patch_size: square frame side and patch side in pixels.
        in_chans: input channels.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer size (timm ``Block``).
        num_classes: classifier outputs.
        sep_pos_embed: separate spatial / temporal (/ class) position tables as in MAE-ST fine-tuning; else one
            joint table.
        cls_embed: prepend a class token (never merged; not used by the head, as in MAE-ST).
        dropout: dropout before the classifier (MAE-ST's default 0.5).
        drop_path_rate: stochastic depth, linearly increasing over blocks.
        norm_eps: LayerNorm epsilon (1e-6 in MAE-ST).

    Attributes:
        arch: the architecture arguments (saved with our checkpoints so they can be rebuilt).
    """

    def __init__(
        self,
        num_frames: int = 16,
        t_patch_size: int = 2,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 400,
        sep_pos_embed: bool = True,
        cls_embed: bool = True,
        qkv_bias: bool = True,
        dropout: float = 0.5,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.arch = dict(
            num_frames=num_frames,
            t_patch_size=t_patch_size,
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            num_classes=num_classes,
            sep_pos_embed=sep_pos_embed,
            cls_embed=cls_embed,
            qkv_bias=qkv_bias,
            norm_eps=norm_eps,
        )
        self.patch_embed = TubeletEmbed(num_frames, t_patch_size, img_size, patch_size, in_chans, embed_dim)
        slices, height, width = self.patch_embed.grid_size
        self.sep_pos_embed, self.cls_embed = sep_pos_embed, cls_embed
        self.num_prefix_tokens = int(cls_embed)
        self.num_classes, self.embed_dim = num_classes, embed_dim
        if cls_embed:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if sep_pos_embed:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, height * width, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, slices, embed_dim))
            if cls_embed:
                self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + int(cls_embed), embed_dim))
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=rate, norm_layer=norm_layer)
            for rate in rates
        )
        self.norm = norm_layer(embed_dim)
        self.head_drop = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for p in self.parameters():
            if p.dim() == 3:  # class token and position tables
                trunc_normal_(p, std=0.02)
        self.apply(_init_module)

    @property
    def time_slices(self) -> int:
        """T', the number of tubelet time slices."""
        return self.patch_embed.grid_size[0]

    def position_embedding(self) -> Tensor:
        """[1, prefix + T'H'W', C] position embeddings (time-major; the class token's first)."""
        if not self.sep_pos_embed:
            return self.pos_embed
        slices, height, width = self.patch_embed.grid_size
        pos = self.pos_embed_spatial.repeat(1, slices, 1) + self.pos_embed_temporal.repeat_interleave(
            height * width, dim=1
        )
        return torch.cat([self.pos_embed_class, pos], dim=1) if self.cls_embed else pos

    def embed(self, clips: Tensor) -> Tensor:
        """Clips [B, 3, T, H, W] -> [B, prefix + T'H'W', C] tokens with position embeddings."""
        x = self.patch_embed(clips)
        if self.cls_embed:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.position_embedding()

    def forward_features(self, clips: Tensor) -> Tensor:
        """Clips [B, 3, T, H, W] -> tokens after the last block [B, N, C] (the norm comes after pooling)."""
        x = self.embed(clips)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Tokens [B, N, C] -> logits [B, K]: mean of the patch tokens, norm, dropout, linear."""
        pooled = self.head_drop(self.norm(x[:, self.num_prefix_tokens :].mean(1)))
        return pooled if pre_logits else self.head(pooled)

    def forward(self, clips: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(clips))


def _init_module(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


#: MAE-ST's fine-tuned configurations at 16 frames x 224 (t_patch_size 2: 8 x 14 x 14 = 1568 tokens).
#: Note MAE-ST's ``vit_huge_patch14`` uses patch_size 16 (its code), so it is named here by what it is.
CONFIGS: dict[str, dict] = {
    "vit_base_patch16": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16": dict(embed_dim=1024, depth=24, num_heads=16),
    "vit_huge_patch16": dict(embed_dim=1280, depth=32, num_heads=16),
}


#: The embedded moving-objects model: 8 frames of 32 x 32 px in tubelets of 2 x 4 x 4 (256 tokens + class), 10 classes.
EMBEDDED_ARCH = dict(
    num_frames=8, t_patch_size=2, img_size=32, patch_size=4, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0
)


def create_model(name: str = "embedded", *, num_classes: int | None = None, **overrides) -> SpatiotemporalViT:
    """A randomly initialised SpatiotemporalViT; weights come from ``load_checkpoint`` / ``load_pretrained_encoder``.

    Args:
        name: ``"embedded"`` (:data:`EMBEDDED_ARCH`, 10 classes, no head dropout) or a named MAE-ST size
            (:data:`CONFIGS`: 16 x 224, t_patch 2, 400 classes).
        num_classes: outputs of the head (default: the task's).
        **overrides: any other constructor argument (``num_frames``, ``img_size``, ``drop_path_rate``, ...).
    """
    if name == "embedded":
        base = {**EMBEDDED_ARCH, "num_classes": 10, "dropout": 0.0}
    elif name in CONFIGS:
        base = CONFIGS[name]
    else:
        raise ValueError(f"Unknown video model {name!r}; choose 'embedded' or one of {sorted(CONFIGS)}.")
    classes = {} if num_classes is None else {"num_classes": num_classes}
    return SpatiotemporalViT(**{**base, **classes, **overrides})
