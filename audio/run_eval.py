"""Hydra entry point for audio evaluation (see audio/conf/eval.yaml).

python -m tokenmerge.audio.run_eval                                    # the embedded model and clips
python -m tokenmerge.audio.run_eval -m model=embedded,embedded_tome tome.r=4,8 tome.method=tome,random_drop
python -m tokenmerge.audio.run_eval experiment=paper_audioset_vit_base model.checkpoint=/w/as.pth \
    data.root=/as/eval.csv data.classes=/as/class_labels_indices.csv
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .experiment import run_evaluation


@hydra.main(version_base=None, config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run_evaluation(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
