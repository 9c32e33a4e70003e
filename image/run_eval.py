"""Hydra entry point for image evaluation (see image/conf/eval.yaml).

python -m tokenmerge.image.run_eval model=vit_base_patch16_224 tome.r=16 data.root=/path/to/imagenet/val
python -m tokenmerge.image.run_eval -m tome.r=0,4,8,12 tome.method=tome,random_drop
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
