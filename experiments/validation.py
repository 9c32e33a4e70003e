"""Check every setting of a run before any work starts (every modality's evaluation calls this first).

A run's config is checked as a whole, before a model is built or a file is read, so a typo costs seconds,
not the hour of an unmerged pass over ImageNet. Each check raises a :class:`~tokenmerge.experiments.cli.UserError`
whose message names the setting as the user wrote it (``tome.r=-5``) and says what to do. A Hydra multirun
checks every job this way before the first one starts (:mod:`tokenmerge.experiments.hydra_cli`).

The shared keys of an evaluation config are checked here (``tome``, ``device``, ``dtype``, ``seed``,
``throughput``); each modality adds its model and data checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch

from tokenmerge.core.schedule import check_schedule, schedule_spec
from tokenmerge.core.state import REDUCTIONS

from .checkpoint import read_safetensors_metadata
from .cli import DataError, SettingError
from .evaluation import Setting

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

__all__ = [
    "DTYPES",
    "check_choice",
    "check_count",
    "check_device",
    "check_num_classes",
    "check_path",
    "check_run",
    "check_tome",
]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_choice(value, choices: Iterable, key: str) -> None:
    """``key=value`` must be one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise SettingError(f"{key}={value} is not known: choose one of {', '.join(map(str, choices))}.")


def check_count(value, key: str, minimum: int = 1, optional: bool = False) -> None:
    """``key=value`` must be a whole number >= ``minimum`` (or null if ``optional``)."""
    if optional and value is None:
        return
    if not _is_int(value) or value < minimum:
        extra = " or null" if optional else ""
        raise SettingError(f"{key}={value} is not valid: give a whole number >= {minimum}{extra}.")


def check_device(device, key: str = "device") -> None:
    """A device torch understands and this machine has."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SettingError(f"{key}={device} is not a device: use cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingError(f"{key}={device}, but torch sees no CUDA device here: use {key}=cpu.")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise SettingError(f"{key}={device}, but there are only {torch.cuda.device_count()} CUDA devices.")
    elif parsed.type not in ("cpu", "mps"):
        raise SettingError(f"{key}={device} is not supported here: use cpu or cuda.")


def check_tome(tome: Mapping, scopes: Sequence[str] = ("all",), key: str = "tome") -> Setting:
    """The shared ``tome`` group (r, inflection, ratio, method, merge_scope, prop_attn) -> the :class:`Setting`.

    Args:
        tome: the group as a dict.
        scopes: the merge scopes the modality's models offer (the first is the default).
        key: the group's name in messages.
    """
    r, inflection, ratio = tome.get("r", 0), tome.get("inflection"), tome.get("ratio")
    ramp_hint = f"for the paper's ramp add {key}.inflection=-1, for a fraction of tokens use {key}.ratio=0.25"
    per_layer = isinstance(r, Sequence) and not isinstance(r, str)
    if per_layer:
        if not r or not all(_is_int(v) and v >= 0 for v in r):
            raise SettingError(f"{key}.r={list(r)} is not valid: a per-block list needs whole numbers >= 0.")
    elif not _is_int(r):
        raise SettingError(
            f"{key}.r={r} is not a number of tokens: give a whole number >= 0 (e.g. {key}.r=8) or one per block "
            f"({key}.r=[8,8,4,4]); {ramp_hint}."
        )
    elif r < 0:
        raise SettingError(f"{key}.r={r} is not valid: r is how many tokens each block removes, a whole number >= 0.")
    if inflection is not None and (not _is_number(inflection) or not -1 <= inflection <= 1):
        raise SettingError(
            f"{key}.inflection={inflection} is not valid: give a number in [-1, 1] (-1: the paper's decreasing "
            "schedule, 0: constant, 1: increasing), or null for a constant r."
        )
    if ratio is not None:
        if not _is_number(ratio) or not 0 <= ratio <= 0.5:
            raise SettingError(
                f"{key}.ratio={ratio} is not valid: a ratio is the fraction of each block's tokens merged, in "
                "[0, 0.5] (a block can merge at most half of its tokens)."
            )
        if r or inflection is not None:
            raise SettingError(f"Set either {key}.ratio or {key}.r (with an optional {key}.inflection), not both.")
    if per_layer and inflection is not None:
        raise SettingError(f"{key}.inflection applies to a single r, not to a per-block list {key}.r={list(r)}.")
    method = tome.get("method", "tome")
    check_choice(method, sorted(REDUCTIONS), f"{key}.method")
    scope = tome.get("merge_scope")
    if scope is not None:
        if len(scopes) == 1:
            raise SettingError(
                f"{key}.merge_scope={scope} does not apply here: these models have one scope ({scopes[0]}); "
                f"leave {key}.merge_scope=null."
            )
        check_choice(scope, scopes, f"{key}.merge_scope")
    prop_attn = tome.get("prop_attn", True)
    if not isinstance(prop_attn, bool):
        raise SettingError(f"{key}.prop_attn={prop_attn} is not valid: use true or false.")
    spec = schedule_spec(r, inflection, ratio if ratio is None else float(ratio))
    try:
        check_schedule(spec)
    except (TypeError, ValueError) as error:  # anything the checks above did not foresee
        raise SettingError(f"{key}: {error}") from None
    return Setting(method, spec, scope)


def check_run(cfg: Mapping, scopes: Sequence[str] = ("all",)) -> Setting:
    """The keys every evaluation config shares: ``tome``, ``device``, ``dtype``, ``seed``, ``throughput`` and the
    loader settings of ``data`` (``batch_size``, ``workers``, ``max_samples``, ``per_class``).

    Returns the run's :class:`Setting` (from ``tome``).
    """
    check_device(cfg.get("device", "cpu"))
    check_choice(cfg.get("dtype", "float32"), DTYPES, "dtype")
    seed = cfg.get("seed", 0)
    if not _is_int(seed):
        raise SettingError(f"seed={seed} is not valid: give a whole number.")
    throughput = cfg.get("throughput") or {}
    check_count(throughput.get("batch_size", 1), "throughput.batch_size")
    check_count(throughput.get("rounds", 1), "throughput.rounds")
    setting = check_tome(cfg.get("tome") or {}, scopes)
    data = cfg.get("data") or {}
    check_count(data.get("batch_size", 1), "data.batch_size")
    check_count(data.get("workers", 0), "data.workers", minimum=0)
    check_count(data.get("max_samples"), "data.max_samples", optional=True)
    check_count(data.get("per_class"), "data.per_class", optional=True)
    return setting


def check_path(path, key: str, kind: str = "folder", hint: str = "") -> Path:
    """``key=path`` must exist and be a folder (``kind="folder"``) or a file (``kind="file"``); returns the Path."""
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file'; got {kind!r}.")
    path = Path(str(path)).expanduser()
    hint = f" {hint}" if hint else ""
    if not path.exists():
        raise DataError(f"{key}={path} does not exist.{hint}")
    if kind == "folder" and not path.is_dir():
        raise DataError(f"{key}={path} is a file, not a folder.{hint}")
    if kind == "file" and not path.is_file():
        raise DataError(f"{key}={path} is a folder, not a file.{hint}")
    return path


def check_num_classes(data_classes: int, model_classes: int, data_key: str, model_key: str = "model") -> None:
    """The data's label set must be the model's: a mismatch would score every prediction against wrong labels."""
    if data_classes != model_classes:
        raise SettingError(
            f"{data_key} has {data_classes} classes but the {model_key} predicts {model_classes}: evaluate on data "
            f"with the model's classes, or use a model fine-tuned on these {data_classes} classes "
            "(model.num_classes=... with model.checkpoint=...)."
        )


def check_index_classes(data: Mapping, load_index: Callable, num_classes: int, model_name: str) -> None:
    """Read the index at ``data.root`` (with ``data.classes``) and check its class count against the model's head.

    Args:
        data: the ``data`` group (``root`` set).
        load_index: the modality's ``(root, classes) -> index`` reader; an index with ``classes`` (None: unknown).
        num_classes: classes the model predicts.
        model_name: for the message.
    """
    try:
        index = load_index(data["root"], data.get("classes"))
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"data.root={data['root']}: {error}") from None
    if index.classes is not None:
        check_num_classes(len(index.classes), num_classes, f"data.root={data['root']}", f"model {model_name}")


def check_model_choice(
    model: Mapping, embedded: Mapping[str, Path], names: Iterable[str], modality: str, kind: str, default_classes: int
) -> int:
    """Check ``model.name`` / ``model.checkpoint`` of an evaluation before anything is built; returns its classes.

    Args:
        model: the ``model`` group (``name``, ``checkpoint``, optional ``num_classes``).
        embedded: the embedded model names and their shipped weights (class names in the file's metadata).
        names: the named configurations (random weights unless a checkpoint is given).
        modality: ``"video"`` or ``"audio"``, for the training command in the hint.
        kind: whose checkpoints a named model takes, for the hint (``"MAE-ST"``, ``"AudioMAE"``).
        default_classes: the named configurations' head size when ``model.num_classes`` is not set.

    Returns:
        The classes the model predicts: the embedded file's, else ``model.num_classes`` or ``default_classes``.
    """
    name, checkpoint = model.get("name"), model.get("checkpoint")
    check_count(model.get("num_classes"), "model.num_classes", optional=True)
    if name in embedded:
        hint = f"Train it: python -m tokenmerge.{modality}.train_embedded, or pass model.checkpoint=FILE."
        path = check_path(checkpoint or embedded[name], "model.checkpoint", "file", hint)
        return len(read_safetensors_metadata(path)["classes"])
    check_choice(name, [*sorted(embedded), *sorted(names)], "model.name")
    if checkpoint:
        check_path(checkpoint, "model.checkpoint", "file", f"Give a {kind} .pth or a .safetensors checkpoint.")
    return model.get("num_classes") or default_classes
