"""torch.compile(fullgraph=True) on every patched model family: one graph, the eager outputs, and a bounded
number of recompiles when r changes (each distinct schedule is one graph: r fixes the token counts; ``dynamic=False``
keeps every graph specialised to its own token counts)."""

import shutil

import pytest
import torch

from tokenmerge.audio import apply_patch as audio_patch
from tokenmerge.core import patch_model
from tokenmerge.image import apply_patch as image_patch
from tokenmerge.video import apply_patch as video_patch

from .audio.test_patch import _model as audio_model
from .audio.test_patch import _spectrograms
from .core.bert_layout import BertMeanPooled, tiny_bert
from .image.test_patch import _images
from .image.test_patch import _model as image_model
from .video.test_patch import _clips
from .video.test_patch import _model as video_model


class CountingBackend:
    """A dynamo backend that runs the captured graph as it is and counts how many graphs were compiled."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph, example_inputs):
        self.graphs += 1
        return graph.forward


def _bert_case():
    model = tiny_bert()
    ids = torch.randint(5, 100, (3, 12), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(12)[None] < torch.tensor([12, 7, 3])[:, None]).long()
    handle = patch_model(model, BertMeanPooled(), r=3)
    return model, handle, lambda m: m(ids * mask, attention_mask=mask)


CASES = {
    "image": lambda: (lambda m, x: (m, image_patch(m, r=8), lambda f: f(x)))(image_model("class_token"), _images(2)),
    "video-spacetime": lambda: (lambda m, x: (m, video_patch(m, r=8), lambda f: f(x)))(video_model(), _clips()),
    "video-frame": lambda: (lambda m, x: (m, video_patch(m, r=8, merge_scope="frame"), lambda f: f(x)))(
        video_model(), _clips()
    ),
    "audio": lambda: (lambda m, x: (m, audio_patch(m, r=6), lambda f: f(x)))(audio_model(), _spectrograms()),
    "bert-padded": _bert_case,
}


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_fullgraph_compile_matches_eager_and_r_changes_recompile_once_each(case):
    torch._dynamo.reset()
    model, handle, run = CASES[case]()
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=False)
    for r in (handle.config.r, 2, handle.config.r, 2):  # back and forth: two schedules, two graphs
        handle.config.r = r
        torch.testing.assert_close(run(compiled), run(model), atol=1e-5, rtol=1e-5)
    assert backend.graphs == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
@torch.no_grad()
def test_default_backend_compiles_the_patched_image_model():
    torch._dynamo.reset()
    model, x = image_model("class_token"), _images(2)
    image_patch(model, r=8)
    compiled = torch.compile(model, fullgraph=True, dynamic=False)  # inductor
    torch.testing.assert_close(compiled(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("case", ["image", "bert-padded"])
@torch.no_grad()
def test_folded_attention_compiles_to_one_graph_with_the_masks_output(case):
    torch._dynamo.reset()
    model, handle, run = CASES[case]()
    expected = run(model)
    handle.config.attention = "folded"
    compiled = torch.compile(model, backend=CountingBackend(), fullgraph=True, dynamic=False)
    torch.testing.assert_close(run(compiled), expected, atol=1e-5, rtol=1e-5)
