"""Audio experiments end to end on small settings: Hydra config, embedded clips as WAV, a corrupt file skipped,
mAP on a multi-label (AudioSet-style) index, the merge picture, and the metrics against scikit-learn."""

import csv
import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from sklearn.metrics import average_precision_score

from tokenmerge.audio.embedded import create_embedded_model
from tokenmerge.audio.experiment import run_evaluation
from tokenmerge.audio.spoken_words import WORDS, SpokenWordsDataset, write_audio_dataset
from tokenmerge.audio.visualize import visualize_merges
from tokenmerge.experiments.checkpoint import save_safetensors
from tokenmerge.experiments.metrics import average_precision, mean_average_precision, multilabel_metrics


def _config(overrides):
    with initialize_config_module("tokenmerge.audio.conf", version_base=None):
        return OmegaConf.to_container(compose("eval", overrides=overrides), resolve=True)


def test_paper_experiment_composes():
    cfg = _config(["experiment=paper_audioset_vit_base", "data.root=/as/eval.csv", "data.classes=/as/classes.csv"])
    assert cfg["model"]["name"] == "vit_base_patch16" and cfg["model"]["target_length"] == 1024
    assert cfg["data"]["preset"] == "audioset" and cfg["tome"]["r"] == 32


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    model = create_embedded_model(len(WORDS), depth=1, embed_dim=32, num_heads=2)
    return save_safetensors(model, tmp_path / "tiny.safetensors", arch=model.arch, classes=list(WORDS))


def test_embedded_run_with_a_corrupt_file(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    overrides = [f"model.checkpoint={tiny_weights}", "data.per_class=2", "data.workers=0", "tome.r=8"]
    cfg = _config([*overrides, "throughput.batch_size=2", "throughput.rounds=1"])
    rows = run_evaluation(cfg, tmp_path / "run")
    assert rows[1]["schedule"] == [8] and rows[1]["final_tokens"] == 57
    assert rows[0]["samples"] == 2 * len(WORDS) and rows[0]["agreement"] == 1.0 and rows[0]["skipped"] == []

    root = tmp_path / "cache" / "spoken_words_val_2_0"
    (root / "val" / "broken.wav").write_bytes(b"RIFF not really a wav")
    (root / "with_bad.csv").write_text((root / "val.csv").read_text() + "val/broken.wav,yes\nval/missing.wav,no\n")
    cfg["data"]["root"] = str(root / "with_bad.csv")
    rows = run_evaluation(cfg, tmp_path / "bad")
    assert rows[0]["samples"] == 2 * len(WORDS)
    assert sorted(p.rsplit("/", 1)[-1] for p in rows[0]["skipped"]) == ["broken.wav", "missing.wav"]
    saved = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert len(saved["results"][1]["skipped"]) == 2


def test_multilabel_index_is_scored_by_map(tmp_path, monkeypatch):
    """An AudioSet-style index (file,labels + class_labels_indices.csv) gives mAP rows."""
    monkeypatch.setenv("TOKENMERGE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = create_embedded_model(3, depth=1, embed_dim=32, num_heads=2)
    weights = save_safetensors(model, tmp_path / "ml.safetensors", arch=model.arch, classes=["a", "b", "c"])
    root = write_audio_dataset(tmp_path / "words", "val", per_class=1)
    files = sorted(str(p.relative_to(root)) for p in (root / "val").glob("*.wav"))
    with (root / "classes.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [("index", "mid", "display_name"), (0, "/m/a", "a"), (1, "/m/b", "b"), (2, "/m/c", "c")]
        )
    with (root / "multi.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file", "labels"))
        writer.writerows((file, ["/m/a", "/m/b,/m/c", "/m/a,/m/c"][i % 3]) for i, file in enumerate(files))
    overrides = [
        f"model.checkpoint={weights}",
        f"data.root={root / 'multi.csv'}",
        f"data.classes={root / 'classes.csv'}",
    ]
    cfg = _config([*overrides, "data.workers=0", "tome.r=4", "throughput.batch_size=2", "throughput.rounds=1"])
    rows = run_evaluation(cfg, tmp_path / "ml_run")
    assert "mAP" in rows[0] and "top1" not in rows[0] and 0 < rows[0]["mAP"] <= 1 and rows[0]["kl"] == 0.0


def test_average_precision_matches_scikit_learn():
    g = torch.Generator().manual_seed(0)
    for trial in range(6):
        scores = torch.randint(0, 4, (40,), generator=g).float() if trial % 2 else torch.randn(40, generator=g)
        positives = torch.rand(40, generator=g) < 0.3
        positives[0] = True
        expected = average_precision_score(positives.numpy(), scores.numpy())
        assert average_precision(scores, positives) == pytest.approx(expected, abs=1e-6)
    logits, targets = torch.randn(30, 4, generator=g), (torch.rand(30, 4, generator=g) < 0.4).float()
    targets[:, 3] = 0  # a class with no positive is left out of the mean, as AudioSet evaluations do
    expected = sum(average_precision_score(targets[:, k].numpy(), logits[:, k].numpy()) for k in range(3)) / 3
    assert mean_average_precision(logits, targets) == pytest.approx(expected, abs=1e-6)
    same, other = multilabel_metrics(logits, targets, logits), multilabel_metrics(logits, targets, -logits)
    assert same["agreement"] == 1.0 and same["kl"] == 0.0 and other["kl"] > 0.1


def test_merge_picture_over_the_spectrogram():
    torch.manual_seed(0)
    model = create_embedded_model(len(WORDS), depth=2, embed_dim=32, num_heads=2).eval()
    features = SpokenWordsDataset(1, split="val", train=False, utterances_per_word=1)[0][0]
    picture = visualize_merges(model, features, r=8, class_names=list(WORDS), labels=False, scale=2)
    assert picture.size == (128 * 2, (128 * 2 + 2) * 2)  # time across, two panels of mel bins (no captions)
    pixels = torch.from_numpy(np.array(picture))
    groups_panel = pixels[130 * 2 :].numpy()
    colours = {tuple(c) for c in groups_panel.reshape(-1, 3).tolist()} - {(255, 255, 255)}
    assert 2 <= len(colours) <= 65 - 16  # at most one colour per final token
    white = (groups_panel == 255).all(-1)
    assert white.any() and not (white[:-1, :-1] & white[1:, :-1] & white[:-1, 1:] & white[1:, 1:]).any()  # 1 px
    assert "forward" not in model.__dict__  # the patch was removed
