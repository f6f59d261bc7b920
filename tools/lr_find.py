"""LR range test (fastai's lr_find) on a config's model, data and strategy: plot loss vs LR, suggest an LR.

    python tools/lr_find.py -c configs/ulmfit.yml --out lr_find.png
    python tools/lr_find.py -c configs/ppocr_adam_cosine.yml --start-lr 1e-7 --end-lr 1 --num-it 100

The sweep uses the config's strategy / optimizer (its discriminative multipliers; the swept LR is block 0's)
on shuffled training batches, stops once the smoothed loss exceeds 4x its best, and leaves the model as it
found it. The suggestions (valley, steep, minimum) are peak learning rates for the config's lr / learning_rate.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load, parser, speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--out", default="lr_find.png", help="PNG to write")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--num-it", type=int, default=100)
    args = p.parse_args(argv)
    config = load(args)
    import paddle
    import paddle_strategy as ps
    from paddle.io.dataloader.collate import default_collate_fn
    from paddle_strategy.program import build_collate, build_dataset, build_loss, build_model, is_builtin_dataset
    paddle.seed(config["Global"]["seed"])
    train = build_dataset(config, "Train")
    model = build_model(config)
    bs = config["Train"]["loader"]["batch_size_per_card"]
    lengths = train.lengths() if is_builtin_dataset(config["Train"]["dataset"]) else None
    sampler = ps.GlobalBatchSampler(len(train), bs, seed=config["Global"]["seed"], lengths=lengths)
    loader = paddle.io.DataLoader(train, batch_sampler=sampler, collate_fn=build_collate(config) or default_collate_fn,
                                  return_list=True)
    model.train()
    result = ps.lr_find(model, build_loss(config), loader, start_lr=args.start_lr, end_lr=args.end_lr,
                        num_it=args.num_it, strategy=config["_strategy"])
    result.plot(args.out, title=f"lr_find: {os.path.basename(args.config)}")
    print(result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
