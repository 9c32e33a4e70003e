"""tokenmerge.experiments: the experiment harness shared by every modality, built on :mod:`tokenmerge.core`.

Evaluation and sweeps (``evaluation``, ``evaluation_job``), the training loop and recipes (``training``,
``training_recipe``), metrics, throughput and FLOPs measurement, distributed runs (torchrun), checkpoint I/O, data
helpers, Hydra glue (``hydra_cli``, ``conf/``), command-line errors and config validation, progress, plots and merge
pictures. Modalities import it and the core; it imports the core, never a modality.
"""

from .distributed import DistributedContext, distributed_context
from .flops import count_flops, ideal_speedup
from .metrics import agreement, classification_metrics, kl_divergence, topk_accuracy
from .throughput import ThroughputResult, measure_interleaved, measure_throughput, write_json
from .training import TrainResult, train
from .training_recipe import TrainConfig, measure_training_throughput

__all__ = [
    "DistributedContext",
    "distributed_context",
    "count_flops",
    "ideal_speedup",
    "agreement",
    "classification_metrics",
    "kl_divergence",
    "topk_accuracy",
    "ThroughputResult",
    "measure_interleaved",
    "measure_throughput",
    "write_json",
    "TrainResult",
    "train",
    "TrainConfig",
    "measure_training_throughput",
]
