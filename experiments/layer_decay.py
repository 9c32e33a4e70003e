"""Layer-wise learning-rate decay (ELECTRA, BEiT), as MAE, MAE-ST and AudioMAE fine-tune their ViTs.

A model with ``L`` blocks (``model.blocks``) is cut into layers 0 .. L + 1: layer 0 is the embeddings (names
starting with ``patch_embed`` or ``pos_embed``, which covers MAE-ST's ``pos_embed_spatial`` / ``_temporal`` /
``_class``, and the tokens ``cls_token``, ``mask_token``, ``dist_token``, ``reg_token``), layer i + 1 is
``blocks.i``, and layer L + 1 is everything else (the final ``norm`` or ``fc_norm``, the head). A parameter of
layer ``l`` trains at ``lr * layer_decay ** (L + 1 - l)``: the head at ``lr``, block L - 1 at
``lr * layer_decay``, block 0 at ``lr * layer_decay ** L``, the embeddings at ``lr * layer_decay ** (L + 1)``.

The official rule (facebookresearch/mae_st ``util/lr_decay.py``; MAE's and AudioMAE's ``util/lr_decay.py`` are
the same file, line numbers in brackets):

* scales ``layer_decay ** (num_layers - i)`` for i in 0 .. num_layers with ``num_layers = len(model.blocks) + 1``
  (lines 25-27 [23-25]), i.e. the exponent ``L + 1 - l`` above;
* layer ids (``get_layer_id_for_vit``, lines 66-83 [64-76]): 0 for ``cls_token``, ``mask_token`` and names
  starting with ``patch_embed`` or ``pos_embed`` (MAE and AudioMAE: exactly ``cls_token`` and ``pos_embed``, the
  same ids on their models), ``int(name.split(".")[1]) + 1`` for names starting with ``blocks``, else
  ``num_layers``;
* frozen parameters are skipped; no weight decay on 1-d parameters and on the names the model's
  ``no_weight_decay()`` lists (lines 29-39 [27-37]; the list is passed by MAE-ST ``main_finetune.py:477-482``,
  AudioMAE ``main_finetune_as.py:432-435``); one group per (layer, decay or not) carrying ``lr_scale``
  (lines 41-59 [39-57]);
* the schedule sets each group's lr to the scheduled lr times its ``lr_scale`` (``util/lr_sched.py:23-27``
  [AudioMAE 16-20]), as :func:`tokenmerge.experiments.training.train` does.

Differences: ``dist_token`` and ``reg_token`` (timm's DeiT and register models, absent from the official models)
are layer 0 here, like the class token; the weight-decay exemption is
:func:`~tokenmerge.experiments.training_recipe.decay_exempt` (also 0-d parameters and names containing a
position embedding or token name), which exempts the same parameters on the official models.
"""

from __future__ import annotations

from torch import nn

from .training_recipe import decay_exempt

#: Parameters of layer 0 besides the ``patch_embed*`` and ``pos_embed*`` ones: the prefix tokens.
EMBEDDING_TOKENS = ("cls_token", "mask_token", "dist_token", "reg_token")


def layer_id(name: str, num_layers: int) -> int:
    """The layer of parameter ``name`` in a ViT of ``num_layers`` blocks: 0 for the embeddings and tokens, i + 1
    for ``blocks.i.*``, ``num_layers + 1`` for the rest (final norm, head).

    Raises:
        ValueError: ``name`` is in a block ``i >= num_layers``.
    """
    if name in EMBEDDING_TOKENS or name.startswith(("patch_embed", "pos_embed")):
        return 0
    if name.startswith("blocks."):
        block = int(name.split(".")[1])
        if block >= num_layers:
            raise ValueError(f"{name} is in block {block}, but the model has num_layers={num_layers} blocks.")
        return block + 1
    return num_layers + 1


def layer_decay_groups(
    model: nn.Module, lr: float, weight_decay: float, layer_decay: float, num_layers: int | None = None
) -> list[dict]:
    """AdamW parameter groups with layer-wise learning-rate decay (see the module docstring for the rule).

    Args:
        model: a ViT whose blocks are ``model.blocks`` (timm's VisionTransformer, SpatiotemporalViT,
            SpectrogramViT), unwrapped (not DDP); a ToMe patch changes no parameter names.
        lr: the peak learning rate; each group starts at ``lr * lr_scale``.
        weight_decay: on the parameters :func:`~tokenmerge.experiments.training_recipe.decay_exempt` does not
            exempt; 0 on the others.
        layer_decay: in (0, 1]; 1 gives every parameter ``lr`` (still grouped by layer).
        num_layers: the number of blocks L (default ``len(model.blocks)``).

    Returns:
        One group per (layer, decayed or not) with a trainable parameter, in order of first parameter:
        ``{"params": [...], "weight_decay": w, "lr_scale": layer_decay ** (L + 1 - layer), "lr": lr * lr_scale}``.
        Every trainable parameter is in exactly one group; frozen ones in none.

    Raises:
        ValueError: ``layer_decay`` is outside (0, 1], or a block index is >= ``num_layers``.
        TypeError: ``num_layers`` is not given and the model has no ``blocks``.
    """
    if not 0 < layer_decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1]; got {layer_decay!r}.")
    if num_layers is None:
        if not hasattr(model, "blocks"):
            raise TypeError(f"{type(model).__name__} has no .blocks; pass num_layers (its number of blocks).")
        num_layers = len(model.blocks)
    exempt = decay_exempt(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer, decayed = layer_id(name, num_layers), name not in exempt
        if (layer, decayed) not in groups:
            scale = layer_decay ** (num_layers + 1 - layer)
            groups[layer, decayed] = {
                "params": [],
                "weight_decay": weight_decay if decayed else 0.0,
                "lr_scale": scale,
                "lr": lr * scale,
            }
        groups[layer, decayed]["params"].append(param)
    return list(groups.values())
