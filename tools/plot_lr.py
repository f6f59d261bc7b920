"""Plot a config's whole learning-rate curve before training: one line per block, unfreeze epochs marked.

    python tools/plot_lr.py -c configs/ulmfit.yml --out lr.png
    python tools/plot_lr.py -c configs/fastai_one_cycle.yml -o Global.epoch_num=4 --out lr.png

The strategy is built on the config's model and training-set size exactly as tools/train.py builds it (same
blocks, same number of steps), but nothing is trained.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load, parser, speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--out", default="lr.png", help="PNG to write")
    args = p.parse_args(argv)
    config = load(args)
    from paddle_strategy.plotting import plot_lr
    from paddle_strategy.program import build_dataset, build_model, sample_input, steps_per_epoch
    train = build_dataset(config, "Train")
    model = build_model(config)
    spe = steps_per_epoch(config, len(train))
    total = spe * config["Global"]["epoch_num"]
    _, lr_scheduler = config["_strategy"].build(model, max_train_steps=total, steps_per_epoch=spe,
                                                sample_input=sample_input(config, model, train))
    title = f"{os.path.basename(args.config)}: {config['Global']['epoch_num']} epochs x {spe} steps"
    plot_lr(lr_scheduler, total, args.out, title=title, model=model)
    print(f"wrote {args.out} ({total} steps, {max(1, len(lr_scheduler.block_names))} block(s))")
    return args.out


if __name__ == "__main__":
    main()
