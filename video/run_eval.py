"""Hydra entry point for video evaluation (see video/conf/eval.yaml).

python -m tokenmerge.video.run_eval                                   # the embedded model and clips
python -m tokenmerge.video.run_eval -m tome.r=16,32 tome.merge_scope=spacetime,frame tome.method=tome,random_drop
python -m tokenmerge.video.run_eval experiment=paper_k400_vit_large model.checkpoint=/w/vitl.pth data.root=/k400/val.csv
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
