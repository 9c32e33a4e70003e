"""tokenmerge: Token Merging ("Token Merging: Your ViT But Faster", Bolya et al., ICLR 2023) for images, video,
audio and the transformers researchers use.

One call for every model family built in::

    import tokenmerge
    handle = tokenmerge.apply_patch(model, r=16)   # timm ViTs, our video and audio models, torchvision's ViT, ...
    handle.remove()

and one check for an adapter you write yourself: ``tokenmerge.check_adapter(model, adapter, example_input)``.
The layers below (``tokenmerge.core``, ``.adapters``, ``.experiments``, ``.image``, ``.video``, ``.audio``,
``.app``) are described in docs/ARCHITECTURE.md; importing this package imports none of them until a name is used.
"""

__all__ = ["AdapterReport", "apply_patch", "check_adapter", "supported_families"]


def __getattr__(name: str):
    # Lazy, so that `import tokenmerge.core` still loads torch and the standard library only.
    if name in ("apply_patch", "supported_families"):
        from . import patch

        return getattr(patch, name)
    if name in ("AdapterReport", "check_adapter"):
        from tokenmerge.adapters import check

        return getattr(check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
