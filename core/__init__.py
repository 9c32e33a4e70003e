"""tokenmerge.core: modality-agnostic Token Merging operations (imports torch only).

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023 (arXiv 2210.09461).
"""

from .adapter import ModelAdapter, ToMeConfig, ToMeHandle, patch_model, temporary_patch
from .attention import proportional_attention, size_bias
from .block import attention_with_metric, check_block, merging_block_forward
from .distributed import DistributedContext, distributed_context
from .dropping import TokenDropping, random_token_dropping
from .flops import count_flops, ideal_speedup
from .layout import TIMM_BLOCK, BlockLayout
from .matching import Matching, bipartite_soft_matching, max_merge, random_bipartite_matching
from .merge import TokenReduction, initial_size, initial_source, merge_source, merge_wavg, unmerge_with_source
from .metrics import agreement, classification_metrics, kl_divergence, topk_accuracy
from .pooling import size_weighted_mean, size_weighted_pool
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
from .throughput import ThroughputResult, measure_interleaved, measure_throughput, write_json
from .training import TrainResult, train
from .training_recipe import TrainConfig, measure_training_throughput
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
    "agreement",
    "attention_with_metric",
    "classification_metrics",
    "kl_divergence",
    "topk_accuracy",
    "check_block",
    "get_reduction",
    "merging_block_forward",
    "Matching",
    "ScheduleSpec",
    "ThroughputResult",
    "TokenDropping",
    "TokenReduction",
    "bipartite_soft_matching",
    "count_flops",
    "ideal_speedup",
    "initial_source",
    "max_merge",
    "measure_interleaved",
    "measure_throughput",
    "merge_source",
    "merge_wavg",
    "proportional_attention",
    "ramp_schedule",
    "random_bipartite_matching",
    "random_token_dropping",
    "resolve_schedule",
    "schedule_spec",
    "size_bias",
    "tokens_per_layer",
    "unmerge_with_source",
    "write_json",
    "TrainConfig",
    "TrainResult",
    "train",
    "measure_training_throughput",
    "DistributedContext",
    "distributed_context",
]
