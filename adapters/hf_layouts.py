"""Where the blocks of Hugging Face transformers 5.x encoders keep their pieces (:class:`~tokenmerge.core.BlockLayout`).

The paths follow the models' own code (``transformers/models/<family>/modeling_<family>.py``, 5.x layout: separate
``q_proj``/``k_proj``/``v_proj`` projections, the attention module returning its output projection already applied):

* ViT and DeiT (``ViTLayer``, ``DeiTLayer``): pre-norm, ``layernorm_before`` / ``layernorm_after``,
  ``attention.o_proj``, one ``dropout`` applied to both branches.
* DINOv2 with or without registers (``Dinov2Layer``): pre-norm, ``norm1`` / ``norm2``, LayerScale ``layer_scale1`` /
  ``layer_scale2`` and ``drop_path`` on both branches (the same module twice).
* CLIP and SigLIP (``CLIPEncoderLayer``, ``SiglipEncoderLayer``): pre-norm, ``layer_norm1`` / ``layer_norm2``,
  ``self_attn.out_proj``.
* BERT and RoBERTa (``BertLayer``, ``RobertaLayer``): post-norm, ``attention.self.query`` ..., the residual add and
  LayerNorm inside ``attention.output`` and ``output``, so the layout names their ``dense``, ``dropout`` and
  ``LayerNorm`` submodules rather than the wrappers.
* DistilBERT (``TransformerBlock``): post-norm, ``attention.q_lin`` ..., ``sa_layer_norm`` / ``output_layer_norm``,
  ``ffn`` (linear, activation, linear, dropout).

ViT, DeiT, DINOv2, CLIP and SigLIP keep their attention-probability dropout as a float (``attention_dropout``,
``dropout``), not as an ``nn.Dropout`` a layout can name; their adapters name it
(:attr:`~tokenmerge.adapters.hf_tower.HuggingFaceAdapter.attention_dropout_rate`) and refuse to train with it above 0
(every released config has 0.0).
"""

from __future__ import annotations

from tokenmerge.core import BlockLayout

#: ``ViTLayer`` and ``DeiTLayer``.
VIT_LAYER = BlockLayout(
    norm_first=True,
    attn_norm="layernorm_before",
    mlp_norm="layernorm_after",
    num_heads="attention.num_attention_heads",
    query="attention.q_proj",
    key="attention.k_proj",
    value="attention.v_proj",
    attn_out=("attention.o_proj", "dropout"),
    mlp=("mlp", "dropout"),
)

#: ``Dinov2Layer`` and ``Dinov2WithRegistersLayer`` (MLP or SwiGLU ``mlp``).
DINOV2_LAYER = BlockLayout(
    norm_first=True,
    attn_norm="norm1",
    mlp_norm="norm2",
    num_heads="attention.num_attention_heads",
    query="attention.q_proj",
    key="attention.k_proj",
    value="attention.v_proj",
    attn_out=("attention.o_proj",),
    attn_residual=("layer_scale1", "drop_path"),
    mlp=("mlp",),
    mlp_residual=("layer_scale2", "drop_path"),
)

#: ``CLIPEncoderLayer`` and ``SiglipEncoderLayer``.
CLIP_LAYER = BlockLayout(
    norm_first=True,
    attn_norm="layer_norm1",
    mlp_norm="layer_norm2",
    num_heads="self_attn.num_heads",
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    attn_out=("self_attn.out_proj",),
    mlp=("mlp",),
)

#: ``BertLayer`` and ``RobertaLayer``.
BERT_LAYER = BlockLayout(
    norm_first=False,
    attn_norm="attention.output.LayerNorm",
    mlp_norm="output.LayerNorm",
    num_heads="attention.self.num_attention_heads",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attn_dropout="attention.self.dropout",
    attn_out=("attention.output.dense", "attention.output.dropout"),
    mlp=("intermediate", "output.dense", "output.dropout"),
)

#: DistilBERT's ``TransformerBlock``.
DISTILBERT_LAYER = BlockLayout(
    norm_first=False,
    attn_norm="sa_layer_norm",
    mlp_norm="output_layer_norm",
    num_heads="attention.n_heads",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    attn_dropout="attention.dropout",
    attn_out=("attention.out_lin",),
    mlp=("ffn",),
)
