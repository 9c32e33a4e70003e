"""tokenmerge.core: the Token Merging mechanism, modality-agnostic (imports torch and the standard library only).

Matching, merging, sizes and sources (and token positions for rotary-position models), proportional attention,
block layouts and the block re-drive, the adapter API and its handle, schedules, merge scopes, size-weighted pooling
and the random baselines. The experiment harness (evaluation, training, measurement, Hydra glue, pictures) is
:mod:`tokenmerge.experiments`.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).
"""

from .adapter import ModelAdapter, ToMeConfig, ToMeHandle, patch_model, temporary_patch
from .attention import proportional_attention, size_bias
from .block import attention_with_metric, check_block, merging_block_forward
from .dropping import TokenDropping, random_token_dropping
from .layout import TIMM_BLOCK, BlockLayout
from .matching import Matching, bipartite_soft_matching, max_merge, random_bipartite_matching
from .merge import TokenReduction, initial_size, initial_source, merge_source, merge_wavg, unmerge_with_source
from .pooling import size_weighted_mean, size_weighted_pool
from .positions import POSITION_RULES, Rotary, merge_positions
from .schedule import (
    ScheduleSpec,
    check_schedule,
    clamp_note,
    parse_schedule,
    ramp_schedule,
    resolve_schedule,
    schedule_spec,
    tokens_per_layer,
)
from .scope import GroupedReduction, grouped_reduction
from .state import REDUCTIONS, TokenState, get_reduction
from .unsupported import unsupported_reason

__all__ = [
    "BlockLayout",
    "TIMM_BLOCK",
    "unsupported_reason",
    "GroupedReduction",
    "ModelAdapter",
    "ToMeConfig",
    "ToMeHandle",
    "check_schedule",
    "clamp_note",
    "parse_schedule",
    "grouped_reduction",
    "initial_size",
    "patch_model",
    "size_weighted_mean",
    "size_weighted_pool",
    "temporary_patch",
    "REDUCTIONS",
    "TokenState",
    "attention_with_metric",
    "check_block",
    "get_reduction",
    "merging_block_forward",
    "Matching",
    "ScheduleSpec",
    "TokenDropping",
    "TokenReduction",
    "bipartite_soft_matching",
    "initial_source",
    "max_merge",
    "merge_source",
    "merge_wavg",
    "merge_positions",
    "POSITION_RULES",
    "Rotary",
    "proportional_attention",
    "ramp_schedule",
    "random_bipartite_matching",
    "random_token_dropping",
    "resolve_schedule",
    "schedule_spec",
    "size_bias",
    "tokens_per_layer",
    "unmerge_with_source",
]
