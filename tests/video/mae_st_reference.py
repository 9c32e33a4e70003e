"""MAE-ST's fine-tuned ViT forward, written from facebookresearch/mae_st (models_vit.py, util/video_vit.py) as plain
tensor operations on a state dict with MAE-ST's own key names, to check our model and loader against it."""

import torch
import torch.nn.functional as F


def mae_st_forward(state: dict, clips: torch.Tensor, *, t_patch: int, patch: int, heads: int, eps: float = 1e-6):
    """clips [B, 3, T, H, W] -> logits, following MAE-ST's VisionTransformer.forward (sep_pos_embed, cls_embed)."""
    kernel = (t_patch, patch, patch)
    x = F.conv3d(clips, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=kernel)
    x = torch.einsum("ncts->ntsc", x.flatten(3))  # [N, T, L, C]
    n, t, length, c = x.shape
    x = x.reshape(n, t * length, c)
    x = torch.cat([state["cls_token"].expand(n, -1, -1), x], dim=1)
    pos = state["pos_embed_spatial"].repeat(1, t, 1) + torch.repeat_interleave(
        state["pos_embed_temporal"], length, dim=1
    )
    pos = torch.cat([state["pos_embed_class"].expand(pos.shape[0], -1, -1), pos], 1)
    x = x + pos
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (c,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps)
        b, tokens, _ = h.shape
        q, k, v = (
            F.linear(h, state[p + f"attn.{name}.weight"], state[p + f"attn.{name}.bias"])
            .reshape(b, tokens, heads, c // heads)
            .permute(0, 2, 1, 3)
            for name in "qkv"
        )
        attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
        h = (attn @ v).transpose(1, 2).reshape(b, tokens, c)
        x = x + F.linear(h, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (c,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps)
        h = F.linear(F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])), *_fc2(state, p))
        x = x + h
    x = x[:, 1:, :].mean(dim=1)
    x = F.layer_norm(x, (c,), state["norm.weight"], state["norm.bias"], eps)
    return F.linear(x, state["head.weight"], state["head.bias"])


def _fc2(state, p):
    return state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"]


def synthetic_mae_st_state(*, frames, t_patch, img, patch, dim, depth, classes, seed=0) -> dict:
    """Random tensors under MAE-ST's key names and shapes (separate q/k/v, separate position tables)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    slices, side = frames // t_patch, img // patch
    state = {
        "patch_embed.proj.weight": rand(dim, 3, t_patch, patch, patch),
        "patch_embed.proj.bias": rand(dim),
        "cls_token": rand(1, 1, dim),
        "pos_embed_spatial": rand(1, side * side, dim),
        "pos_embed_temporal": rand(1, slices, dim),
        "pos_embed_class": rand(1, 1, dim),
        "norm.weight": 1 + rand(dim),
        "norm.bias": rand(dim),
        "head.weight": rand(classes, dim),
        "head.bias": rand(classes),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        for name in ("norm1", "norm2"):
            state[p + f"{name}.weight"], state[p + f"{name}.bias"] = 1 + rand(dim), rand(dim)
        for name in ("q", "k", "v", "proj"):
            state[p + f"attn.{name}.weight"], state[p + f"attn.{name}.bias"] = rand(dim, dim), rand(dim)
        state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"] = rand(4 * dim, dim), rand(4 * dim)
        state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"] = rand(dim, 4 * dim), rand(dim)
    return state


def synthetic_mae_st_pretraining_state(*, frames, t_patch, img, patch, dim, depth, seed=0) -> dict:
    """A pre-training checkpoint's state dict as MAE-ST releases it (models_mae.py): the encoder of
    :func:`synthetic_mae_st_state` without a head, plus the mask token and decoder keys fine-tuning skips."""
    state = synthetic_mae_st_state(
        frames=frames, t_patch=t_patch, img=img, patch=patch, dim=dim, depth=depth, classes=1, seed=seed
    )
    del state["head.weight"], state["head.bias"]
    decoder = dim // 2
    return state | {
        "mask_token": torch.zeros(1, 1, decoder),
        "decoder_embed.weight": torch.zeros(decoder, dim),
        "decoder_pos_embed_spatial": torch.zeros(1, (img // patch) ** 2, decoder),
        "decoder_norm.weight": torch.ones(decoder),
    }
