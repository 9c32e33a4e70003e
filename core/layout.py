"""Where a transformer block keeps its pieces: the one description Token Merging needs to drive any block.

Token Merging (Bolya et al., ICLR 2023, Sec. 3) fits every block made of self-attention followed by an MLP:
it merges between the two, using the attention keys averaged over heads as the similarity metric, and adds
log(size) to the attention scores. A :class:`BlockLayout` names the block's submodules by attribute path
(``"attn.qkv"``, ``"attention.self.query"``) and says where its norms sit:

- pre-norm (ViT, MAE): ``x = x + R_a(O(A(N_a(x))))``, merge, ``x = x + R_m(M(N_m(x)))``
- post-norm (BERT): ``x = N_a(x + R_a(O(A(x))))``, merge, ``x = N_m(x + R_m(M(x)))``

where A is multi-head attention from ``qkv`` (or ``query``/``key``/``value``, or a ``torch.nn.MultiheadAttention``'s
``in_proj_weight``: ``multihead_attention``), O the ``attn_out`` modules,
M the ``mlp`` modules and R the ``*_residual`` modules (LayerScale, DropPath) in order. The block keeps its
class and parameters; the patched forward calls these same submodules. The softmax scale is
1/sqrt(head_dim), as in timm, MAE and BERT.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter

import torch
from torch import nn

#: Fields that name one optional submodule: an attribute set to None means "this block has none".
OPTIONAL_PARTS = ("q_norm", "k_norm", "heads_norm", "gate", "attn_dropout")
#: Fields that name tensors (parameters or buffers), not modules; an attribute set to None means "none".
TENSOR_PARTS = ("qkv_bias", "attn_gamma", "mlp_gamma")


@dataclass(frozen=True)
class BlockLayout:
    """Attribute paths (from the block) of a self-attention + MLP block's pieces.

    Attributes:
        norm_first: True for pre-norm blocks (ViT), False for post-norm blocks (BERT).
        attn_norm: the norm before attention (pre-norm) or after the attention residual (post-norm).
        mlp_norm: the norm before the MLP (pre-norm) or after the MLP residual (post-norm).
        num_heads: the head count, or the path of an int attribute that holds it.
        qkv: a fused projection [B, N, C] -> [B, N, 3*H*D]; or None and ``query``, ``key``, ``value``, or None and
            ``multihead_attention``.
        query, key, value: separate projections [B, N, C] -> [B, N, H*D].
        multihead_attention: a ``torch.nn.MultiheadAttention`` whose input projections (``in_proj_weight`` or
            ``q/k/v_proj_weight``, and ``in_proj_bias``) make the queries, keys and values; its ``out_proj`` goes in
            ``attn_out`` and its ``dropout`` is the attention dropout. Its own forward (``need_weights`` and all) is
            left as it is: the patched block only reads its parameters.
        q_norm, k_norm: optional per-head norms on queries and keys [B, H, N, D].
        heads_norm: optional norm on the heads' concatenated output [B, N, H*D].
        gate: optional projection of the attention input whose sigmoid multiplies the heads' output.
        attn_dropout: optional ``nn.Dropout`` whose ``p`` is the attention-probability dropout (training).
        attn_out: modules applied in order to the heads' output (output projection, dropout).
        attn_residual: modules applied to the attention branch before the residual add (LayerScale, DropPath).
        mlp: modules applied in order to the MLP's input (one ``Mlp`` module, or dense/activation/dense).
        mlp_residual: modules applied to the MLP branch before the residual add.
        qkv_bias: for a bias-free fused ``qkv``, the paths of the query, key and value biases [H*D] added to it
            (BEiT and EVA keep ``q_bias``, ``k_bias``, ``v_bias`` apart); () for none. A path may hold None.
        attn_gamma, mlp_gamma: optional LayerScale tensors [C] (EVA's ``gamma_1``, ``gamma_2``) that multiply the
            attention and MLP branches before the ``*_residual`` modules; a path may hold None.
        absent_ok: optional fields whose attribute may be missing altogether (for blocks from library versions
            that lack it); any other path that does not resolve is reported, so a typo cannot go unnoticed.
    """

    norm_first: bool
    attn_norm: str
    mlp_norm: str
    num_heads: str | int
    attn_out: tuple[str, ...]
    mlp: tuple[str, ...]
    qkv: str | None = None
    query: str | None = None
    key: str | None = None
    value: str | None = None
    multihead_attention: str | None = None
    q_norm: str | None = None
    k_norm: str | None = None
    heads_norm: str | None = None
    gate: str | None = None
    attn_dropout: str | None = None
    attn_residual: tuple[str, ...] = ()
    mlp_residual: tuple[str, ...] = ()
    qkv_bias: tuple[str, ...] = ()
    attn_gamma: str | None = None
    mlp_gamma: str | None = None
    absent_ok: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.norm_first, bool):
            raise TypeError(f"BlockLayout.norm_first is True (pre-norm) or False (post-norm); got {self.norm_first!r}.")
        if isinstance(self.num_heads, bool) or not isinstance(self.num_heads, int | str):
            raise TypeError(f"BlockLayout.num_heads is an int or the path of one; got {self.num_heads!r}.")
        separate = [p for p in (self.query, self.key, self.value) if p is not None]
        kinds = (self.qkv is not None) + (len(separate) == 3) + (self.multihead_attention is not None)
        if kinds != 1 or len(separate) not in (0, 3):
            raise ValueError(
                "BlockLayout needs exactly one of qkv (a fused projection), all of query, key and value, or "
                "multihead_attention (a torch.nn.MultiheadAttention)."
            )
        if not self.attn_out or not self.mlp:
            raise ValueError("BlockLayout needs attn_out (at least the output projection) and mlp modules.")
        if self.qkv_bias and (self.qkv is None or len(self.qkv_bias) != 3):
            raise ValueError("BlockLayout.qkv_bias names three biases (query, key, value) of a fused qkv projection.")
        for name in ("attn_out", "mlp", "attn_residual", "mlp_residual", "qkv_bias", "absent_ok"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"BlockLayout.{name} is a tuple of paths; write ({getattr(self, name)!r},).")

    def paths(self) -> dict[str, str]:
        """Every submodule path by the field that names it (``"mlp[1]"`` for the second MLP module)."""
        named = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "absent_ok":
                continue
            if isinstance(value, tuple):
                named |= {f"{f.name}[{i}]": path for i, path in enumerate(value)}
            elif isinstance(value, str) and f.name != "num_heads":
                named[f.name] = value
        if isinstance(self.num_heads, str):
            named["num_heads"] = self.num_heads
        return named

    def missing(self, block: nn.Module) -> list[str]:
        """The paths ``block`` does not have (empty if the layout fits). An optional part may be set to None;
        only the fields in ``absent_ok`` may be missing altogether."""
        absent = []
        for name, path in self.paths().items():
            if name in self.absent_ok:
                continue
            if _field(name) in OPTIONAL_PARTS + TENSOR_PARTS:
                parent, _, last = path.rpartition(".")
                holder = _lookup(block, parent) if parent else block
                if holder is None or not hasattr(holder, last):
                    absent.append(f"{name}={path!r}")
            elif _lookup(block, path) is None:
                absent.append(f"{name}={path!r}")
        return absent

    def head_problem(self, block: nn.Module) -> str | None:
        """Why the head count does not fit the block's projections, or why a named piece is not a module that can
        be called, or None (call after :meth:`missing`)."""
        heads = _lookup(block, self.num_heads) if isinstance(self.num_heads, str) else self.num_heads
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            return f"num_heads={self.num_heads!r} gives {heads!r}, not a positive int"
        for name, path in self.paths().items():
            part = _lookup(block, path)
            if _field(name) in TENSOR_PARTS:
                if part is not None and not isinstance(part, torch.Tensor):
                    return f"{name}={path!r} is a {type(part).__name__}, not a tensor (name the parameter itself)"
                continue
            if name != "num_heads" and part is not None and not callable(part):
                kind = type(part).__name__
                return f"{name}={path!r} is a {kind}, not a module that can be called (name the module that holds it)"
        if self.multihead_attention is not None:
            return _multihead_attention_problem(self.module(block, "multihead_attention"), self.multihead_attention)
        projection = self.module(block, "qkv" if self.qkv is not None else "query")
        width = getattr(projection, "out_features", None)
        parts = 3 if self.qkv is not None else 1
        if width is not None and width % (parts * heads):
            return f"{heads} heads do not divide the projection's {width // parts} output features"
        return None

    def module(self, block: nn.Module, name: str):
        """The submodule (or value) ``name`` points at, or None where an optional part is absent."""
        path = getattr(self, name)
        return None if path is None else _lookup(block, path)

    def tensors(self, block: nn.Module, name: str) -> list:
        """The tensors of a tuple field of tensors (``qkv_bias``), in order; entries may be None."""
        return [_lookup(block, path) for path in getattr(self, name)]

    def modules(self, block: nn.Module, name: str) -> list[nn.Module]:
        """The modules of a tuple field (``attn_out``, ``mlp``, ``*_residual``), in order."""
        return [attrgetter(path)(block) for path in getattr(self, name)]

    def heads(self, block: nn.Module) -> int:
        """The block's attention head count."""
        return self.num_heads if isinstance(self.num_heads, int) else int(attrgetter(self.num_heads)(block))


def _multihead_attention_problem(attention, path: str) -> str | None:
    """Why ``attention`` is not a ``torch.nn.MultiheadAttention`` the patched block can drive, or None."""
    if not isinstance(attention, nn.MultiheadAttention):
        return f"multihead_attention={path!r} is a {type(attention).__name__}, not a torch.nn.MultiheadAttention"
    if attention.bias_k is not None or attention.add_zero_attn:
        return f"{path!r} adds key/value bias tokens (add_bias_kv or add_zero_attn), which merging does not support"
    if attention.kdim != attention.embed_dim or attention.vdim != attention.embed_dim:
        return f"{path!r} has other key/value widths (kdim, vdim): it is cross-attention, not self-attention"
    return None


def _field(name: str) -> str:
    """The field a :meth:`BlockLayout.paths` key belongs to (``"mlp[1]"`` -> ``"mlp"``)."""
    return name.partition("[")[0]


def _lookup(block: nn.Module, path: str):
    try:
        return attrgetter(path)(block)
    except AttributeError:
        return None


#: timm's ``Block`` with ``Attention`` (ViT, DeiT, MAE, MAE-ST, AudioMAE): pre-norm, fused qkv, LayerScale.
TIMM_BLOCK = BlockLayout(
    norm_first=True,
    attn_norm="norm1",
    mlp_norm="norm2",
    num_heads="attn.num_heads",
    qkv="attn.qkv",
    q_norm="attn.q_norm",
    k_norm="attn.k_norm",
    heads_norm="attn.norm",
    gate="attn.gate",
    attn_dropout="attn.attn_drop",
    attn_out=("attn.proj", "attn.proj_drop"),
    attn_residual=("ls1", "drop_path1"),
    mlp=("mlp",),
    mlp_residual=("ls2", "drop_path2"),
    absent_ok=("heads_norm", "gate"),  # timm versions before scale_norm and gated attention lack them
)
