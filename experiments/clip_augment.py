"""RandAugment and random erasing for a stack of frames, one draw shared by every frame: MAE-ST's clip augmentation.

MAE-ST fine-tunes with ``--rand_aug --aa rand-m7-mstd0.5-inc1`` and random erasing (probability 0.25, mode pixel,
one box): per clip, RandAugment draws its ops and magnitudes once and applies them to every frame
(util/decoder/rand_augment.py:357-371 maps one ``AugmentOp`` call over the frame list; util/kinetics.py:377-395),
and the erased box is the same in every frame (util/decoder/random_erasing.py:116-154, ``cube=True``). An image is
the case T = 1. Every draw comes from torch's global RNG (seeded per process and loader worker by the training
loop), so a checkpointed run resumes with the same augmentations.

Differences from MAE-ST's PIL code: the geometric ops interpolate bilinearly (torchvision's tensor kernels have no
bicubic; kinetics.py:388 asks for bicubic) and pixel centres may round differently; only the increasing ops
(``inc1``, the recipe's) and no op-choice weights (``w``) are implemented.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

#: rand_augment.py:41 _FILL and :343: the grey that geometric ops fill uncovered pixels with.
FILL = [128.0, 128.0, 128.0]
#: rand_augment.py:45 _MAX_LEVEL: magnitudes are clipped to [0, MAX_LEVEL] and scale each op's range.
MAX_LEVEL = 10.0


def _signed(value: float) -> float:
    """``value`` negated with probability 0.5 (rand_augment.py:188-190)."""
    return -value if float(torch.rand(())) < 0.5 else value


def _affine(frames: Tensor, *, shear=(0.0, 0.0), translate=(0.0, 0.0)) -> Tensor:
    """PIL's affine ops about the top-left corner (rand_augment.py:69-98), as torchvision's forward transform."""
    return TF.affine(
        frames,
        angle=0.0,
        translate=list(translate),
        scale=1.0,
        shear=list(shear),
        interpolation=InterpolationMode.BILINEAR,
        fill=FILL,
        center=[0.0, 0.0],
    )


def _shear(factor: float) -> float:
    """PIL's shear factor (output x reads input x + factor * y) as torchvision's shear angle in degrees."""
    return math.degrees(math.atan(factor))


def _solarize(frames: Tensor, threshold: int) -> Tensor:
    """Invert the pixels >= ``threshold`` (PIL ``ImageOps.solarize``; 256 changes nothing)."""
    return torch.where(frames >= threshold, 255 - frames, frames)


def _solarize_add(frames: Tensor, add: int) -> Tensor:
    """Add ``add`` (saturating at 255) to the pixels below 128 (rand_augment.py:151-163)."""
    return torch.where(frames < 128, (frames.int() + add).clamp(max=255).to(frames.dtype), frames)


#: rand_augment.py:393-409 _RAND_INCREASING_TRANSFORMS, each as (frames [T, C, H, W] uint8, magnitude in [0, 10])
#: -> frames, with its level-to-argument mapping (rand_augment.py:193-299).
OPS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "AutoContrast": lambda x, m: TF.autocontrast(x),
    "Equalize": lambda x, m: TF.equalize(x),
    "Invert": lambda x, m: TF.invert(x),
    "Rotate": lambda x, m: TF.rotate(
        x, _signed(m / MAX_LEVEL * 30.0), interpolation=InterpolationMode.BILINEAR, fill=FILL
    ),
    "PosterizeIncreasing": lambda x, m: TF.posterize(x, 4 - int(m / MAX_LEVEL * 4)),
    "SolarizeIncreasing": lambda x, m: _solarize(x, 256 - int(m / MAX_LEVEL * 256)),
    "SolarizeAdd": lambda x, m: _solarize_add(x, int(m / MAX_LEVEL * 110)),
    "ColorIncreasing": lambda x, m: TF.adjust_saturation(x, 1.0 + _signed(m / MAX_LEVEL * 0.9)),
    "ContrastIncreasing": lambda x, m: TF.adjust_contrast(x, 1.0 + _signed(m / MAX_LEVEL * 0.9)),
    "BrightnessIncreasing": lambda x, m: TF.adjust_brightness(x, 1.0 + _signed(m / MAX_LEVEL * 0.9)),
    "SharpnessIncreasing": lambda x, m: TF.adjust_sharpness(x, 1.0 + _signed(m / MAX_LEVEL * 0.9)),
    "ShearX": lambda x, m: _affine(x, shear=(_shear(_signed(m / MAX_LEVEL * 0.3)), 0.0)),
    "ShearY": lambda x, m: _affine(x, shear=(0.0, _shear(_signed(m / MAX_LEVEL * 0.3)))),
    "TranslateXRel": lambda x, m: _affine(x, translate=(_signed(m / MAX_LEVEL * 0.45) * x.shape[-1], 0.0)),
    "TranslateYRel": lambda x, m: _affine(x, translate=(0.0, _signed(m / MAX_LEVEL * 0.45) * x.shape[-2])),
}


@dataclass(frozen=True)
class ClipRandAugment:
    """RandAugment of a clip: ``num_ops`` ops drawn with replacement from :data:`OPS`, each applied with
    probability 0.5 at a magnitude ~ N(magnitude, magnitude_std) clipped to [0, 10], the same to every frame
    (rand_augment.py:330-371, 442-467).

    Call it on frames [T, C, H, W] uint8 (C = 3); returns a new tensor of that shape and dtype.
    """

    magnitude: float = 9.0
    num_ops: int = 2
    magnitude_std: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.magnitude <= MAX_LEVEL and self.num_ops >= 1 and self.magnitude_std >= 0):
            raise ValueError(
                f"RandAugment needs a magnitude in [0, {MAX_LEVEL:g}], num_ops >= 1 and magnitude_std >= 0; got "
                f"{self.magnitude}, {self.num_ops}, {self.magnitude_std}."
            )

    @classmethod
    def from_spec(cls, spec: str) -> ClipRandAugment:
        """Parse timm's notation, e.g. ``rand-m7-mstd0.5-inc1`` (rand_augment.py:470-518): ``m`` magnitude,
        ``n`` ops per clip (default 2), ``mstd`` magnitude noise, ``inc1`` the increasing ops (required here)."""
        parts = spec.split("-")
        settings, increasing = {}, False
        keys = {"m": "magnitude", "n": "num_ops", "mstd": "magnitude_std"}
        for part in parts[1:]:
            match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d+)?)", part)
            key = match and match.group(1)
            if key == "inc":
                increasing = match.group(2) == "1"
            elif key in keys:
                settings[keys[key]] = int(match.group(2)) if key == "n" else float(match.group(2))
            else:
                raise ValueError(f"RandAugment {spec!r}: unknown section {part!r}; use m<n>, n<int>, mstd<n>, inc1.")
        if parts[0] != "rand" or not increasing:
            raise ValueError(
                f"RandAugment {spec!r}: give 'rand-...-inc1' (e.g. MAE-ST's rand-m7-mstd0.5-inc1); only the "
                "increasing ops are implemented."
            )
        return cls(**settings)

    def __call__(self, frames: Tensor) -> Tensor:
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(
                f"ClipRandAugment takes uint8 frames [T, 3, H, W]; got {frames.dtype} of shape {tuple(frames.shape)}."
            )
        names = list(OPS)
        for choice in torch.randint(len(names), (self.num_ops,)).tolist():
            if float(torch.rand(())) >= 0.5:
                continue
            magnitude = self.magnitude + self.magnitude_std * float(torch.randn(()))
            frames = OPS[names[choice]](frames, min(MAX_LEVEL, max(0.0, magnitude)))
        return frames


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


@dataclass(frozen=True)
class ClipRandomErasing:
    """With ``probability``, one box of the clip, the same in every frame, filled with per-pixel N(0, 1) noise
    (random_erasing.py:116-154 in pixel mode, count 1): area U(min_area, max_area) of a frame, aspect ratio
    log-uniform in [min_aspect, 1 / min_aspect], up to 100 tries to fit it.

    Call it on a normalized clip [C, T, H, W] (float); returns a new tensor of that shape (the clip itself if
    nothing is erased).
    """

    probability: float = 0.25
    min_area: float = 0.02
    max_area: float = 1 / 3
    min_aspect: float = 0.3

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"Random erasing probability must be in [0, 1]; got {self.probability}.")

    def __call__(self, clip: Tensor) -> Tensor:
        if clip.ndim != 4 or not clip.is_floating_point():
            raise ValueError(f"ClipRandomErasing takes a float clip [C, T, H, W]; got {clip.dtype} {tuple(clip.shape)}")
        if float(torch.rand(())) >= self.probability:
            return clip
        height, width = clip.shape[-2:]
        log_aspect = (math.log(self.min_aspect), -math.log(self.min_aspect))
        for _ in range(100):
            area = _uniform(self.min_area, self.max_area) * height * width
            aspect = math.exp(_uniform(*log_aspect))
            h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if h < height and w < width:
                top, left = int(torch.randint(height - h + 1, ())), int(torch.randint(width - w + 1, ()))
                erased = clip.clone()
                erased[..., top : top + h, left : left + w] = torch.randn(*clip.shape[:2], h, w, dtype=clip.dtype)
                return erased
        return clip


@dataclass(frozen=True)
class ClipRandomResizedCrop:
    """MAE-ST's fine-tuning crop: one Inception-style box for every frame, resized to ``size`` x ``size``.

    The box (util/decoder/transform.py:387-426, ``_get_param_spatial_crop``) covers a fraction U(``scale``) of the
    frame's area with an aspect ratio (width / height) log-uniform in ``aspect``; ``w = round(sqrt(area x
    aspect))``, ``h = round(sqrt(area / aspect))``; up to 10 tries to fit it, else the centre crop of the largest
    box whose aspect is within the range. The crop is resized bilinearly without corner alignment
    (transform.py:429-461). MAE-ST uses scale (0.08, 1.0) and aspect (0.75, 1.3333) (main_finetune.py:294-305) on
    frames decoded at short side 256 (kinetics.py:211, 272; main_finetune.py:331).

    Call it on a clip [T, C, H, W] (uint8 or float); returns float [T, C, size, size] in the input's range.
    """

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    aspect: tuple[float, float] = (0.75, 1.3333)

    def __post_init__(self) -> None:
        if not (0 < self.scale[0] <= self.scale[1] <= 1):
            raise ValueError(f"Crop scale must be 0 < low <= high <= 1 (a fraction of the frame); got {self.scale}.")
        if not (0 < self.aspect[0] <= self.aspect[1]):
            raise ValueError(f"Crop aspect must be 0 < low <= high; got {self.aspect}.")

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of a random box in a ``height`` x ``width`` frame."""
        log_aspect = (math.log(self.aspect[0]), math.log(self.aspect[1]))
        for _ in range(10):
            area = _uniform(*self.scale) * height * width
            aspect = math.exp(_uniform(*log_aspect))
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(torch.randint(height - h + 1, ())), int(torch.randint(width - w + 1, ())), h, w
        ratio = width / height
        if ratio < self.aspect[0]:
            w, h = width, round(width / self.aspect[0])
        elif ratio > self.aspect[1]:
            w, h = round(height * self.aspect[1]), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, clip: Tensor) -> Tensor:
        if clip.ndim != 4:
            raise ValueError(f"ClipRandomResizedCrop takes a clip [T, C, H, W]; got {tuple(clip.shape)}")
        top, left, h, w = self.box(*clip.shape[-2:])
        cropped = clip[..., top : top + h, left : left + w].float()
        return torch.nn.functional.interpolate(
            cropped, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
