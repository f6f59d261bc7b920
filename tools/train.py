"""Train from a PP-OCR-style YAML config.

    python tools/train.py -c configs/ulmfit.yml
    python tools/train.py -c configs/ppocr_adam_cosine.yml -o Global.epoch_num=3 Optimizer.lr.learning_rate=1e-3
    python -m paddle.distributed.launch --nproc_per_node 2 --devices "" tools/train.py -c configs/ulmfit.yml

Running it again with the same Global.save_model_dir resumes from the newest intact checkpoint.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load, parser, speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    config = load(args)  # every config error shows here, before any model is loaded
    import paddle
    from paddle_strategy.program import build_trainer, checkpoint_location
    checkpoint_location(config["Global"])  # Global.checkpoints must name something to resume from
    paddle.seed(config["Global"]["seed"])
    trainer, model, _ = build_trainer(config)
    print(config["_strategy"])
    if trainer.eval_dataset is not None:
        summary = trainer.finetune_and_eval()
    else:
        summary = trainer.finetune()
    if trainer.is_main:
        with open(os.path.join(trainer.config.checkpoint_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in summary.items()}, f, indent=1, default=str)
    return summary


if __name__ == "__main__":
    main()
