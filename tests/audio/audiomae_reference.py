"""AudioMAE's fine-tuned ViT forward, written from facebookresearch/AudioMAE (models_vit.py, global_pool=True) as
plain tensor operations on a state dict with AudioMAE's own key names, to check our model and loader against it."""

import torch
import torch.nn.functional as F


def audiomae_mask_2d(x: torch.Tensor, grid: tuple[int, int], mask_t_prob: float, mask_f_prob: float) -> torch.Tensor:
    """AudioMAE's fine-tuning masking (models_vit.py:88-145, random_masking_2d) of patch tokens x [B, T*F, C]
    (time-major): per sample, the int(T * (1 - p_t)) time columns with the smallest torch.rand noise, in that order,
    then likewise int(F * (1 - p_f)) frequency rows (noise drawn second) -> [B, T' * F', C]."""
    batch, _, dim = x.shape
    rows_t, rows_f = grid
    x = x.reshape(batch, rows_t, rows_f, dim)
    columns = torch.argsort(torch.rand(batch, rows_t), dim=1)[:, : int(rows_t * (1 - mask_t_prob))]
    x = torch.stack([x[i, columns[i]] for i in range(batch)])
    rows = torch.argsort(torch.rand(batch, rows_f), dim=1)[:, : int(rows_f * (1 - mask_f_prob))]
    x = torch.stack([x[i][:, rows[i]] for i in range(batch)])
    return x.reshape(batch, -1, dim)


def audiomae_forward(
    state: dict,
    spectrograms: torch.Tensor,
    *,
    patch: int,
    heads: int,
    eps: float = 1e-6,
    mask_t_prob: float = 0.0,
    mask_f_prob: float = 0.0,
):
    """spectrograms [B, 1, T, F] -> logits: patch conv, + pos[1:], class token + pos[:1] first, blocks,
    mean over patch tokens, fc_norm, head (AudioMAE's VisionTransformer.forward_features + head). With a mask
    probability above 0, the patch tokens are masked after their position embedding and before the class token goes
    in front (AudioMAE's training forward with mask_t_prob / mask_f_prob, forward_features_mask)."""
    x = F.conv2d(spectrograms, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch)
    grid = tuple(x.shape[2:])
    x = x.flatten(2).transpose(1, 2)  # [B, T/p * F/p, C], time-major
    x = x + state["pos_embed"][:, 1:, :]
    if mask_t_prob > 0 or mask_f_prob > 0:
        x = audiomae_mask_2d(x, grid, mask_t_prob, mask_f_prob)
    cls = (state["cls_token"] + state["pos_embed"][:, :1, :]).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    c = x.shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (c,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps)
        b, tokens, _ = h.shape
        qkv = F.linear(h, state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(b, tokens, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
        h = (attn @ v).transpose(1, 2).reshape(b, tokens, c)
        x = x + F.linear(h, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (c,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps)
        h = F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    x = F.layer_norm(x[:, 1:, :].mean(dim=1), (c,), state["fc_norm.weight"], state["fc_norm.bias"], eps)
    return F.linear(x, state["head.weight"], state["head.bias"])


def synthetic_audiomae_state(*, frames, bins, patch, dim, depth, classes, seed=0) -> dict:
    """Random tensors under AudioMAE's fine-tuned key names and shapes (fused qkv, fc_norm, no norm)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    patch_t, patch_f = (patch, patch) if isinstance(patch, int) else patch  # (frames, bins)
    tokens = (frames // patch_t) * (bins // patch_f)
    state = {
        "patch_embed.proj.weight": rand(dim, 1, patch_t, patch_f),
        "patch_embed.proj.bias": rand(dim),
        "cls_token": rand(1, 1, dim),
        "pos_embed": rand(1, 1 + tokens, dim),
        "fc_norm.weight": 1 + rand(dim),
        "fc_norm.bias": rand(dim),
        "head.weight": rand(classes, dim),
        "head.bias": rand(classes),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        for name in ("norm1", "norm2"):
            state[p + f"{name}.weight"], state[p + f"{name}.bias"] = 1 + rand(dim), rand(dim)
        state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"] = rand(3 * dim, dim), rand(3 * dim)
        state[p + "attn.proj.weight"], state[p + "attn.proj.bias"] = rand(dim, dim), rand(dim)
        state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"] = rand(4 * dim, dim), rand(4 * dim)
        state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"] = rand(dim, 4 * dim), rand(dim)
    return state


def synthetic_audiomae_pretraining_state(*, frames, bins, patch, dim, depth, seed=0) -> dict:
    """A pre-training checkpoint's state dict as AudioMAE releases it (models_mae.py): the encoder of
    :func:`synthetic_audiomae_state` with the final ``norm`` instead of ``fc_norm`` and head, plus the mask token
    and decoder keys fine-tuning skips."""
    state = synthetic_audiomae_state(frames=frames, bins=bins, patch=patch, dim=dim, depth=depth, classes=1, seed=seed)
    for key in ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"):
        del state[key]
    decoder, tokens = dim // 2, state["pos_embed"].shape[1] - 1
    return state | {
        "norm.weight": torch.ones(dim),
        "norm.bias": torch.zeros(dim),
        "mask_token": torch.zeros(1, 1, decoder),
        "decoder_embed.weight": torch.zeros(decoder, dim),
        "decoder_pos_embed": torch.zeros(1, 1 + tokens, decoder),
    }
