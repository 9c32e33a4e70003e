"""Hydra entry point for image evaluation (see image/conf/eval.yaml).

python -m tokenmerge.image.run_eval model=vit_base_patch16_224 tome.r=16 data.root=/path/to/imagenet/val
python -m tokenmerge.image.run_eval -m tome.r=0,4,8,12 tome.method=tome,random_drop

Every setting (of every job, in a multirun) is checked before a model is built or an image is read; a mistake
ends with one line ``error: ...`` and exit status 2 (``HYDRA_FULL_ERROR=1`` shows the traceback). The jobs of a
multirun share the unmerged reference pass and end with one combined table in the sweep folder.
"""

from tokenmerge.experiments.hydra_cli import evaluation_main

from .experiment import run_evaluation

main = evaluation_main("tokenmerge.image.conf", run_evaluation)

if __name__ == "__main__":
    main()
