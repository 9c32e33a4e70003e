"""``tokenmerge.apply_patch``: find the model's family and patch it with that family's adapter.

Families are tried in order, most specific first (our audio model is a timm ViT too). Each family's own
``apply_patch`` keeps working and takes the same settings. This module is imported on the first use of
``tokenmerge.apply_patch``, never by ``import tokenmerge``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from timm.models.eva import Eva
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision.models import VisionTransformer as TorchvisionViT

from tokenmerge import audio, image, video
from tokenmerge.adapters import TorchvisionViTAdapter
from tokenmerge.core import ModelAdapter, ScheduleSpec, ToMeHandle, patch_model


@dataclass(frozen=True)
class Family:
    """A model family ``apply_patch`` recognises: its name, its model class, and its adapter's patch function."""

    name: str
    model_class: type[nn.Module]
    patch: Callable[..., ToMeHandle]


def _patch_torchvision_vit(model: nn.Module, r: ScheduleSpec, **settings) -> ToMeHandle:
    return patch_model(model, TorchvisionViTAdapter(), r, **settings)


FAMILIES = (
    Family("tokenmerge.video.SpatiotemporalViT (MAE-ST layout)", video.SpatiotemporalViT, video.apply_patch),
    Family("tokenmerge.audio.SpectrogramViT (AudioMAE layout)", audio.SpectrogramViT, audio.apply_patch),
    Family("timm VisionTransformer (ViT, DeiT, registers, LayerScale, MAE, ...)", VisionTransformer, image.apply_patch),
    Family("timm Eva (EVA-02, rotary-position vit_*_rope*: positions merged with the tokens)", Eva, image.apply_patch),
    Family("torchvision.models.VisionTransformer", TorchvisionViT, _patch_torchvision_vit),
)


@dataclass(frozen=True)
class LibraryFamilies:
    """The families of an optional library, found by the module of the model's class, so that ``apply_patch``
    imports neither the library nor its adapters for other models.

    Attributes:
        module_prefix: the library's module prefix (``"transformers."``).
        adapters: the ``tokenmerge.adapters`` module that knows the library: its ``FAMILIES`` (names, for
            :func:`supported_families`) and ``adapter_for(model) -> ModelAdapter`` (a clear ``TypeError`` for a class
            of the library that it does not support).
    """

    module_prefix: str
    adapters: str

    def module(self):
        return import_module(self.adapters)


LIBRARIES = (
    LibraryFamilies("transformers.", "tokenmerge.adapters.hugging_face"),
    LibraryFamilies("open_clip.", "tokenmerge.adapters.open_clip"),
)


def supported_families() -> list[str]:
    """The families :func:`apply_patch` recognises, in the order it tries them."""
    names = [family.name for family in FAMILIES]
    for library in LIBRARIES:
        try:
            names += list(library.module().FAMILIES)
        except ImportError:  # the optional library is not installed
            continue
    return names


def _encoder_hint(model: nn.Module) -> str:
    paths = [name for name, module in model.named_modules() if isinstance(module, nn.TransformerEncoder)]
    if not paths:
        return ""
    return (
        f" It holds an nn.TransformerEncoder at model.{paths[0]}: subclass tokenmerge.adapters."
        f"TransformerEncoderAdapter(encoder={paths[0]!r}) with its embed and head and pass it as adapter=."
    )


def apply_patch(
    model: nn.Module, r: ScheduleSpec = 0, *, adapter: ModelAdapter | None = None, **settings
) -> ToMeHandle:
    """Make ``model`` merge tokens; returns the handle (``handle.remove()`` restores the model).

    Args:
        model: a model of a family in :func:`supported_families`, or any model with ``adapter``.
        r: tokens merged per block, or a schedule (see :func:`tokenmerge.core.schedule_spec`).
        adapter: patch with this :class:`~tokenmerge.core.ModelAdapter` instead of finding the family (check a new
            one with :func:`tokenmerge.check_adapter`).
        **settings: the family's settings (``prop_attn``, ``method``, ``seed``, ``trace_source``, ``attention``;
            ``merge_scope`` for video; ``position_rule`` for rotary-position models).

    Raises:
        TypeError: the model's family is not built in (the message names what was found and what to do).
    """
    if adapter is not None:
        return patch_model(model, adapter, r, **settings)
    for family in FAMILIES:
        if isinstance(model, family.model_class):
            return family.patch(model, r, **settings)
    for library in LIBRARIES:
        if type(model).__module__.startswith(library.module_prefix):
            return patch_model(model, library.module().adapter_for(model), r, **settings)
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise TypeError(
        f"tokenmerge.apply_patch does not know {kind}. Built in: {'; '.join(supported_families())}. For another "
        "model write a ModelAdapter (README: 'Add merging to your own model'), check it with "
        "tokenmerge.check_adapter(model, adapter, example_input) and pass apply_patch(model, r, adapter=adapter)."
        + _encoder_hint(model)
    )
