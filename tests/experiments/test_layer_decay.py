"""Layer-wise lr decay: the official group rule on tiny timm / video / audio ViTs, and the trainer's per-group lr."""

import pytest
import torch

from tokenmerge.audio import create_model as create_audio_model
from tokenmerge.experiments import TrainConfig, train
from tokenmerge.experiments.layer_decay import layer_decay_groups
from tokenmerge.experiments.training_recipe import learning_rate, parameter_groups
from tokenmerge.video import create_model as create_video_model

from .training_helpers import SeparableImages, tiny_vit

DECAY = 0.5  # powers of 2: the expected scales are exact


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/experiments/conftest.py


def tiny_video_vit():
    return create_video_model(
        "embedded", num_frames=4, t_patch_size=2, img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2
    )


def tiny_audio_vit():
    return create_audio_model(
        "embedded", target_length=64, num_mel_bins=32, patch_size=16, embed_dim=32, depth=2, num_heads=4
    )


#: Per model of 2 blocks: (names of layer 0, names of the last layer, names without weight decay). The official
#: rule (mae_st util/lr_decay.py): embeddings and tokens 0, blocks.i i + 1, the rest (norms, head) 3.
RULES = {
    tiny_vit: (
        {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"},
        {"norm.weight", "norm.bias", "head.weight", "head.bias"},
        {"cls_token", "pos_embed", "patch_embed.proj.bias", "norm.weight", "norm.bias", "head.bias"},
    ),
    tiny_video_vit: (
        {"cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class", "patch_embed.proj.weight"}
        | {"patch_embed.proj.bias"},
        {"norm.weight", "norm.bias", "head.weight", "head.bias"},
        {"cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class", "patch_embed.proj.bias"}
        | {"norm.weight", "norm.bias", "head.bias"},
    ),
    tiny_audio_vit: (
        {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"},
        {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"},
        {"cls_token", "pos_embed", "patch_embed.proj.bias", "fc_norm.weight", "fc_norm.bias", "head.bias"},
    ),
}


def expected_scale(name: str, first: set[str], last: set[str]) -> float:
    """DECAY ** (3 - layer) for 2 blocks, written out."""
    if name in first:
        return DECAY**3
    if name in last:
        return 1.0
    block = {"blocks.0.": 0, "blocks.1.": 1}[name[:9]]
    return DECAY ** (2 - block)


@pytest.mark.parametrize("make", list(RULES), ids=lambda make: make.__name__)
def test_each_parameter_gets_the_official_layer_scale_and_decay_in_exactly_one_group(make):
    model = make()
    first, last, exempt = RULES[make]
    exempt = exempt | {n for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 1}
    names = {id(p): n for n, p in model.named_parameters()}
    assert first | last | exempt <= set(names.values())
    groups = layer_decay_groups(model, lr=0.1, weight_decay=0.05, layer_decay=DECAY)
    seen = [names[id(p)] for group in groups for p in group["params"]]
    assert sorted(seen) == sorted(names.values())  # every parameter in exactly one group
    for group in groups:
        for param in group["params"]:
            name = names[id(param)]
            assert group["lr_scale"] == expected_scale(name, first, last), name
            assert group["weight_decay"] == (0.0 if name in exempt else 0.05), name
        assert group["lr"] == 0.1 * group["lr_scale"]
    assert len(groups) == 8  # (embeddings, block 0, block 1, head) x (decayed, not decayed)


def test_frozen_parameters_are_left_out_and_bad_settings_are_refused():
    model = tiny_vit()
    model.head.bias.requires_grad_(False)
    grouped = {id(p) for group in layer_decay_groups(model, 0.1, 0.05, 0.75) for p in group["params"]}
    assert id(model.head.bias) not in grouped and id(model.head.weight) in grouped
    with pytest.raises(ValueError, match="blocks.1.norm1.weight is in block 1, but the model has num_layers=1"):
        layer_decay_groups(model, 0.1, 0.05, 0.75, num_layers=1)
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        layer_decay_groups(model, 0.1, 0.05, 1.5)
    with pytest.raises(TypeError, match="Linear has no .blocks; pass num_layers"):
        layer_decay_groups(torch.nn.Linear(2, 2), 0.1, 0.05, 0.75)
    with pytest.raises(ValueError, match=r"layer_decay must be None or in \(0, 1\]"):
        TrainConfig(layer_decay=0.0)


def train_three_steps(out_dir, layer_decay):
    """3 steps of the shared trainer on the tiny timm ViT; returns (config, the saved optimizer state, history)."""
    torch.manual_seed(0)
    model = tiny_vit()
    config = TrainConfig(
        steps=3, batch_size=4, lr=0.01, min_lr=0.001, warmup_steps=2, weight_decay=0.05, layer_decay=layer_decay,
        log_every=1, out_dir=str(out_dir),
    )  # fmt: skip
    result = train(model, SeparableImages(12), config, progress=False)
    state = torch.load(out_dir / "train_state.pt", weights_only=True)
    return model, config, state["optimizer"]["param_groups"], result.history


@pytest.mark.parametrize("layer_decay", [None, 1.0])
def test_without_layer_decay_the_optimizer_is_exactly_as_before(tmp_path, layer_decay):
    model, config, groups, _ = train_three_steps(tmp_path, layer_decay)
    reference = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
    for group in reference.param_groups:
        group["lr"] = learning_rate(2, config)
    assert groups == reference.state_dict()["param_groups"]


def test_the_trainer_scales_each_groups_scheduled_lr(tmp_path):
    model, config, groups, history = train_three_steps(tmp_path, DECAY)
    assert sorted({group["lr_scale"] for group in groups}) == [DECAY**3, DECAY**2, DECAY, 1.0]
    for group in groups:  # the state after step 2 (0-based): its lr is the last step's
        assert group["lr"] == pytest.approx(learning_rate(2, config) * group["lr_scale"], rel=1e-12)
    assert [entry["lr"] for entry in history] == [learning_rate(step, config) for step in range(3)]
    assert learning_rate(0, config) != learning_rate(2, config)  # the schedule moved while the scales held
