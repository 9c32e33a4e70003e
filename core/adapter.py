"""One adapter mechanism for every model family: the patch handle, its config and the merging block loop.

Token Merging (Bolya et al., ICLR 2023) needs the same machinery in every model: a schedule of r per
block, sizes (and optionally sources) carried from block to block, proportional attention, merging
between attention and MLP, size-weighted pooling, and a patch that can be changed between forwards and
removed again. That machinery lives here. A :class:`ModelAdapter` only says the five things that are
particular to a model family:

1. ``blocks``: which blocks merge;
2. ``layout``: where each block's pieces are and whether it is pre-norm or post-norm (:class:`BlockLayout`);
3. ``embed``: how the model turns its input into the tokens entering the first block;
4. ``protected``: how many leading tokens never merge;
5. ``finish`` and ``head``: how it normalizes and pools the final tokens (weighting each by its size).

The image, video and audio adapters are such subclasses; so is the BERT example of
``notebooks/merge_your_own_model.ipynb``. ``patch_model(model, adapter, r=...)`` installs the patch by
composition: the model keeps its class, parameters and ``state_dict`` keys; ``forward`` (and
``forward_features`` where the model has one) become instance attributes that re-drive the model's own
submodules, and ``handle.remove()`` deletes them. Padded batches pass ``attention_mask`` (1 for real tokens,
0 for padding) to the patched forward: padding never receives attention, each step merges padding pairs before
any pair of real tokens, and padding weighs nothing (size 0) in merges and in size-weighted pooling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from .attention import check_kernel
from .block import check_block, merging_block_forward
from .draws import sample_generators
from .layout import TIMM_BLOCK, BlockLayout
from .merge import initial_source
from .positions import POSITION_RULES, Rotary, check_position_rule
from .schedule import ScheduleSpec, check_schedule, resolve_schedule, tokens_per_layer
from .state import RANDOM_METHODS, REDUCTIONS, TokenState
from .unsupported import unsupported_model_reason


class ModelAdapter:
    """What tokenmerge needs to know about a model family. Subclass and override; defaults fit timm-style models.

    Attributes:
        layout: where each block's pieces are (default timm's ``Block``; see :mod:`tokenmerge.core.layout`).
        merge_scopes: the scopes this family offers; the first is the default. "all" matches all
            tokens together; other scopes split the tokens into groups (see :meth:`num_groups`).
    """

    layout: BlockLayout = TIMM_BLOCK
    merge_scopes: tuple[str, ...] = ("all",)
    #: Model methods that would run the blocks without merging (timm's intermediate-feature APIs): while patched,
    #: they refuse with a clear error instead of returning the unmerged model's features.
    unmerged_paths: tuple[str, ...] = ("forward_intermediates", "get_intermediate_layers")
    #: Attributes every model of the family has, checked first by :meth:`check`; a model that lacks one is refused
    #: with "<supports>; <Model> lacks <parts>. <parts_hint>".
    required_parts: tuple[str, ...] = ()
    supports: str = "this adapter supports one model family"
    parts_hint: str = ""
    #: Keyword inputs of the model's own forward that the patched forward hands to :meth:`embed` in a dict beside the
    #: main input (``{"input_ids": ..., "token_type_ids": ...}``); others are refused with what to do.
    input_keywords: tuple[str, ...] = ()
    #: Whether the family's attention rotates queries and keys by token position (RoPE): the adapter then gives
    #: :meth:`token_positions` and :meth:`rotary`, the positions are merged with the tokens, and RoPE is no reason
    #: to refuse the model.
    rotary_positions: bool = False

    def check(self, model: nn.Module) -> None:
        """Raise a clear ``TypeError`` if the model cannot be patched: a missing ``required_parts`` attribute, a block
        that does not fit ``layout``, or one with windowed attention, a grid-tied relative position bias or
        cross-attention."""
        missing = [part for part in self.required_parts if not hasattr(model, part)]
        if missing:
            hint = f" {self.parts_hint}" if self.parts_hint else ""
            raise TypeError(f"{self.supports}; {type(model).__name__} lacks {', '.join(missing)}.{hint}")
        reason = unsupported_model_reason(model, rotary=self.rotary_positions)
        if reason:
            raise TypeError(f"{type(model).__name__} cannot merge tokens: {reason}")
        for i, block in enumerate(self.blocks(model)):
            check_block(block, where=f"blocks[{i}]", layout=self.layout, rotary=self.rotary_positions)

    def blocks(self, model: nn.Module) -> Sequence[nn.Module]:
        """The transformer blocks that merge, in order (default ``model.blocks``)."""
        return model.blocks

    def protected(self, model: nn.Module) -> int:
        """How many leading tokens never merge (class, distillation, register tokens)."""
        raise NotImplementedError

    def embed(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Model input -> [B, N, C] tokens entering the first block (position embeddings added)."""
        raise NotImplementedError

    def token_positions(self, model: nn.Module, x: Tensor) -> Tensor | None:
        """[B, N, P] coordinates of the tokens x [B, N, C] entering the first block, in the units of the model's
        rotary embedding (any value for protected tokens); None (default) for a model without RoPE."""
        return None

    def rotary(self, model: nn.Module, index: int) -> Rotary | None:
        """Block ``index``'s rotary embedding at given positions (see :class:`~tokenmerge.core.positions.Rotary`);
        None (default) for a model without RoPE."""
        return None

    def finish(self, model: nn.Module, x: Tensor) -> Tensor:
        """[B, N', C] tokens after the last block -> the model's final features (default: ``model.norm``)."""
        return model.norm(x)

    def head(self, model: nn.Module, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """Final tokens [B, N', C] -> logits [B, K] (or pooled features if ``pre_logits``); pool by ``state.size``."""
        raise NotImplementedError

    def head_needs_sizes(self, model: nn.Module) -> bool:
        """Whether :meth:`head` pools by token size (then the model's own ``forward_head`` must not see merged tokens
        without their sizes); False for class-token heads. Default True."""
        return True

    def num_groups(self, model: nn.Module, scope: str) -> int:
        """Equal groups of tokens (after the protected ones) that merge only among themselves under ``scope``."""
        return 1

    def block_forward(
        self,
        block: nn.Module,
        x: Tensor,
        state: TokenState,
        r: int,
        *,
        protected: int,
        prop_attn: bool,
        method: str,
        groups: int,
        attention: str = "mask",
        rotary: Rotary | None = None,
    ) -> Tensor:
        """One block with merging, [B, N, C] -> [B, N - r, C] (default: core.merging_block_forward with ``layout``)."""
        return merging_block_forward(
            block,
            x,
            state,
            r,
            protected=protected,
            prop_attn=prop_attn,
            method=method,
            groups=groups,
            layout=self.layout,
            attention=attention,
            rotary=rotary,
        )


@dataclass
class ToMeConfig:
    """Merging settings; checked when set, and may be changed between forward passes (``handle.config.r = 8``).

    Attributes:
        r: schedule spec: int, per-layer list, (r, inflection) ramp or float ratio (see ``tokenmerge.core.schedule``).
        prop_attn: proportional attention (on for supervised models, off for off-the-shelf MAE models).
        trace_source: build the source map (for visualization and unmerging).
        method: "tome", or an ablation baseline "random_merge" / "random_drop".
        merge_scope: which tokens may merge together (None: the adapter's default, e.g. "spacetime" for video).
        attention: how merged blocks add the log-size bias: "mask" (SDPA's float mask) or "folded" (in extra
            head channels, so SDPA runs without a mask; see :mod:`tokenmerge.core.attention`).
        seed: for the random baselines: None draws from torch's global generator; an int gives every sample its
            own generator seeded from the seed and the sample (:func:`tokenmerge.core.draws.sample_generators`), so
            the numbers do not depend on batching, order or the number of processes.
        position_rule: in a RoPE model, a merged token's position: "destination" (default: the position of the token
            it merged into) or "mean" (size-weighted mean of its members'); see :mod:`tokenmerge.core.positions`.
            Unused without RoPE.
    """

    r: ScheduleSpec = 0
    prop_attn: bool = True
    trace_source: bool = False
    method: str = "tome"
    merge_scope: str | None = None
    attention: str = "mask"
    seed: int | None = None
    position_rule: str = POSITION_RULES[0]
    num_layers: int | None = field(default=None, repr=False)
    scopes: tuple[str, ...] | None = field(default=None, repr=False)

    def __setattr__(self, name: str, value) -> None:
        if name == "r":
            check_schedule(value, getattr(self, "num_layers", None))
        elif name == "method" and value not in REDUCTIONS:
            raise ValueError(f"Unknown method {value!r}; choose one of {sorted(REDUCTIONS)}.")
        elif name == "attention":
            check_kernel(value)
        elif name == "position_rule":
            check_position_rule(value)
        elif name == "seed" and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"seed must be an int or None; got {value!r}.")
        elif name in ("prop_attn", "trace_source") and not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False; got {value!r}.")
        elif name == "merge_scope" and value is not None and getattr(self, "scopes", None) is not None:
            if value not in self.scopes:
                raise ValueError(f"Unknown merge_scope {value!r} for this model; choose one of {list(self.scopes)}.")
        super().__setattr__(name, value)

    def bind(self, num_layers: int, scopes: tuple[str, ...]) -> None:
        """Fix the model's depth and scopes, and check every setting against them."""
        super().__setattr__("num_layers", num_layers)
        super().__setattr__("scopes", scopes)
        for f in fields(self):
            if f.repr:
                setattr(self, f.name, getattr(self, f.name))


class ToMeHandle:
    """A live patch on one model. ``remove()`` restores the model; the model's forward uses ``config``."""

    def __init__(self, model: nn.Module, adapter: ModelAdapter, config: ToMeConfig):
        adapter.check(model)
        config.bind(len(adapter.blocks(model)), adapter.merge_scopes)
        previous = model.__dict__.get("forward")
        if isinstance(previous, _PatchedForward):
            previous.handle.remove()
        self.model, self.adapter, self.config = model, adapter, config
        model.forward = _PatchedForward(self)
        if hasattr(model, "forward_features"):
            model.forward_features = _PatchedForwardFeatures(self)
        if hasattr(model, "forward_head"):
            model.forward_head = _PatchedForwardHead(self)
        for name in adapter.unmerged_paths:
            if hasattr(model, name):
                setattr(model, name, _RefusedPath(name))

    @property
    def active(self) -> bool:
        """Whether this handle's patch is the one installed on the model."""
        forward = self.model.__dict__.get("forward")
        return isinstance(forward, _PatchedForward) and forward.handle is self

    @property
    def protected(self) -> int:
        """Tokens that never merge: class, distillation and register tokens."""
        return self.adapter.protected(self.model)

    @property
    def merge_scope(self) -> str:
        """The scope in use (the config's, else the adapter's default)."""
        return self.config.merge_scope or self.adapter.merge_scopes[0]

    def schedule(self, num_tokens: int) -> list[int]:
        """Tokens each block removes for an input of ``num_tokens`` tokens (protected tokens included)."""
        groups = self.adapter.num_groups(self.model, self.merge_scope)
        return resolve_schedule(
            self.config.r, len(self.adapter.blocks(self.model)), num_tokens, self.protected, groups=groups
        )

    def tokens_per_layer(self, num_tokens: int) -> list[int]:
        """Token count entering each block, and after the last."""
        return tokens_per_layer(self.schedule(num_tokens), num_tokens)

    def forward_tokens(
        self, inputs: Tensor, trace_source: bool | None = None, attention_mask: Tensor | None = None
    ) -> tuple[Tensor, TokenState]:
        """Model input -> (final tokens [B, N', C] after the model's final norm, TokenState with sizes/sources).

        Args:
            inputs: what the adapter's ``embed`` takes (images, clips, spectrograms, token ids).
            trace_source: overrides ``config.trace_source`` for this call.
            attention_mask: [B, N] 1 for real tokens and 0 for padding, over the N tokens ``embed`` returns;
                padding then has size 0 (see :meth:`TokenState.start`). None: every token is real.
        """
        model, adapter, config = self.model, self.adapter, self.config
        x = adapter.embed(model, inputs)
        traced = config.trace_source if trace_source is None else trace_source
        state = TokenState.start(x, attention_mask, trace_source=traced)
        state.positions, state.position_rule = adapter.token_positions(model, x), config.position_rule
        if config.seed is not None and config.method in RANDOM_METHODS:
            state.generator = sample_generators(config.seed, inputs, device=x.device)
        groups, protected = adapter.num_groups(model, self.merge_scope), self.protected
        for index, (block, r) in enumerate(zip(adapter.blocks(model), self.schedule(x.shape[1]))):
            x = adapter.block_forward(
                block,
                x,
                state,
                r,
                protected=protected,
                prop_attn=config.prop_attn,
                method=config.method,
                groups=groups,
                attention=config.attention,
                rotary=adapter.rotary(model, index),
            )
        return adapter.finish(model, x), state

    def forward_head(self, x: Tensor, state: TokenState, pre_logits: bool = False) -> Tensor:
        """The model's head on merged tokens (pooling weighted by token size)."""
        return self.adapter.head(self.model, x, state, pre_logits=pre_logits)

    @torch.no_grad()
    def traced_forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """One forward pass that records sources: (logits [B, K], source map [B, N', N]), the map saying which input
        tokens (protected first) each of the N' final tokens holds."""
        tokens, state = self.forward_tokens(inputs, trace_source=True)
        source = state.source
        if source is None:  # nothing merged
            source = initial_source(tokens.shape[1], tokens.shape[0], device=tokens.device)
        return self.forward_head(tokens, state), source

    def source_map(self, inputs: Tensor) -> Tensor:
        """[B, N', N] 0/1 map of one forward pass: which input tokens (protected first) each final token holds."""
        return self.traced_forward(inputs)[1]

    def remove(self) -> None:
        """Restore the model's own forward (a no-op if this patch was already removed or replaced)."""
        if self.active:
            del self.model.forward
            for name in patched_methods(self.adapter):
                self.model.__dict__.pop(name, None)

    def __repr__(self) -> str:
        return f"ToMeHandle({type(self.model).__name__}, {self.config}, active={self.active})"


@dataclass(eq=False)
class _PatchedForward:
    """Instance-level ``model.forward`` while patched (a picklable callable, not a closure).

    Takes the model input positionally or as ``input_ids=`` / ``pixel_values=`` (the Hugging Face names), an
    ``attention_mask``, the adapter's ``input_keywords`` (handed to ``embed`` in a dict) and ``return_dict`` (False:
    the output object's ``to_tuple()``, as Hugging Face models return); anything else is refused with what to do.
    """

    handle: ToMeHandle = field(repr=False)

    def __call__(
        self,
        x=None,
        *args,
        attention_mask: Tensor | None = None,
        input_ids=None,
        pixel_values=None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        inputs = next((v for v in (x, input_ids, pixel_values) if v is not None), None)
        if inputs is None:
            raise ValueError(
                "The patched forward needs the model input: model(inputs), model(input_ids=...) or "
                "model(pixel_values=...)."
            )
        keywords = self.handle.adapter.input_keywords
        passed = {name: kwargs.pop(name) for name in keywords if kwargs.get(name) is not None}
        extra = [a for a in (*args, *kwargs.values()) if a is not None and a is not False]
        if extra:
            names = ", ".join(name for name, value in kwargs.items() if value is not None and value is not False)
            accepted = "".join(f", {name}" for name in keywords)
            raise ValueError(
                f"The patched forward takes the model input, attention_mask{accepted} and return_dict only; got more "
                f"({names or 'positional'}). Pass what embed needs as the input itself (a dict such as "
                "{'input_ids': ..., 'token_type_ids': ...} reaches the adapter's embed as it is), or call "
                "handle.remove() first."
            )
        if passed:
            inputs = {"input_ids": inputs, **passed}
        tokens, state = self.handle.forward_tokens(inputs, attention_mask=attention_mask)
        output = self.handle.forward_head(tokens, state)
        return output.to_tuple() if return_dict is False and hasattr(output, "to_tuple") else output


#: The attribute of the tokens the patched ``forward_features`` returns that holds their :class:`TokenState`.
STATE_ATTRIBUTE = "token_state"


@dataclass(eq=False)
class _PatchedForwardFeatures:
    """Instance-level ``model.forward_features``: returns the merged tokens [B, N', C], carrying their
    :class:`TokenState` as ``tokens.token_state`` so that ``model.forward_head(tokens)`` pools by size."""

    handle: ToMeHandle = field(repr=False)

    def __call__(self, x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        tokens, state = self.handle.forward_tokens(x, attention_mask=attention_mask)
        setattr(tokens, STATE_ATTRIBUTE, state)
        return tokens


@dataclass(eq=False)
class _PatchedForwardHead:
    """Instance-level ``model.forward_head``: the adapter's size-weighted head on ``forward_features``'s tokens.

    ``model.forward_head(model.forward_features(x))`` (timm's two-step call) then equals ``model(x)``. Tokens that
    lost their sizes (a new tensor computed from them) are refused when the head pools by size.
    """

    handle: ToMeHandle = field(repr=False)

    def __call__(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        state = getattr(x, STATE_ATTRIBUTE, None)
        if state is None:
            adapter, model = self.handle.adapter, self.handle.model
            if self.handle.config.r != 0 and adapter.head_needs_sizes(model):
                raise ValueError(
                    f"{type(model).__name__}.forward_head got tokens without their merge sizes, so it cannot pool "
                    "them by size while Token Merging is on. Pass the output of model.forward_features(x) as it is "
                    "(it carries the sizes), or use tokens, state = handle.forward_tokens(x) and "
                    "handle.forward_head(tokens, state)."
                )
            state = TokenState()
        return self.handle.forward_head(x, state, pre_logits=pre_logits)


@dataclass(eq=False)
class _RefusedPath:
    """Instance-level stand-in for a method that would run the blocks without merging (see ``unmerged_paths``)."""

    name: str

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f"model.{self.name} runs the transformer blocks without Token Merging, so while the model is patched it "
            f"would not give the patched model's features. Call handle.remove() first for the unmerged model's "
            "features, or use handle.forward_tokens(x) for the merged tokens and their sizes."
        )


def patched_methods(adapter: ModelAdapter) -> tuple[str, ...]:
    """The instance attributes a patch with ``adapter`` may install besides ``forward`` (``remove`` deletes them)."""
    return ("forward_features", "forward_head", *adapter.unmerged_paths)


def patch_model(
    model: nn.Module,
    adapter: ModelAdapter,
    r: ScheduleSpec = 0,
    *,
    prop_attn: bool = True,
    trace_source: bool = False,
    method: str = "tome",
    merge_scope: str | None = None,
    attention: str = "mask",
    seed: int | None = None,
    position_rule: str = POSITION_RULES[0],
) -> ToMeHandle:
    """Make ``model`` merge tokens, as ``adapter`` describes it; returns the handle (``handle.remove()`` undoes it).

    Every setting is checked here, before any forward pass. Applying to an already patched model replaces
    the previous patch (the old handle becomes inactive).

    Args:
        model: the model to patch.
        adapter: what is particular to the model's family (see :class:`ModelAdapter`).
        r: tokens merged per block: int, per-layer list, (r, inflection) ramp or float ratio.
        prop_attn: proportional attention; True for supervised models, False for off-the-shelf MAE models.
        trace_source: record which input patches each token holds (``handle.forward_tokens`` returns it).
        method: "tome" (bipartite soft matching) or the baselines "random_merge", "random_drop".
        merge_scope: one of ``adapter.merge_scopes`` (None: the first, the adapter's default).
        attention: how merged blocks add the log-size bias: "mask" (default, SDPA's float mask) or "folded" (in
            extra head channels, so SDPA runs without a mask, e.g. on its CUDA flash kernel; see
            :mod:`tokenmerge.core.attention`).
        seed: the random baselines' seed (None: torch's global generator; see :class:`ToMeConfig`).
        position_rule: a merged token's position in a RoPE model, "destination" or "mean" (see :class:`ToMeConfig`).
    """
    config = ToMeConfig(
        r=r,
        prop_attn=prop_attn,
        trace_source=trace_source,
        method=method,
        merge_scope=merge_scope,
        attention=attention,
        seed=seed,
        position_rule=position_rule,
    )
    return ToMeHandle(model, adapter, config)


@contextmanager
def temporary_patch(model: nn.Module, adapter: ModelAdapter, r: ScheduleSpec = 0, **settings) -> Iterator[ToMeHandle]:
    """Patch ``model`` for the duration of a ``with`` block, then put back exactly what was there before.

    A patch the user had installed is restored afterwards (its handle is active again), so helpers such as
    visualizations never change the state of a model they were given. ``settings`` as in :func:`patch_model`.
    """
    names = ("forward", *patched_methods(adapter))
    saved = {name: model.__dict__[name] for name in names if name in model.__dict__}
    handle = patch_model(model, adapter, r, **settings)
    try:
        yield handle
    finally:
        handle.remove()
        for name, value in saved.items():
            setattr(model, name, value)
