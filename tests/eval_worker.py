"""eval() and predict() of a fixed model, run as one process or under paddle.distributed.launch.

    python eval_worker.py OUT_DIR

37 samples in batches of 4 (10 batches, the last of 1): every metric kind (names, a paddle.metric.Metric, a
user callable), the loss, and predict()'s rows. Each rank writes OUT_DIR/result_<rank>.json and appends the
sample indices it read to OUT_DIR/reads_<rank>.txt.
"""
import json
import os
import sys

import numpy as np
import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import paddle_strategy as ps  # noqa: E402


class Logged(paddle.io.Dataset):
    def __init__(self, out, n=37):
        rng = np.random.default_rng(4)
        self.x = rng.normal(size=(n, 5)).astype("float32")
        self.y = rng.integers(0, 2, size=n).astype("int64")
        self.out = out

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        with open(os.path.join(self.out, f"reads_{paddle.distributed.get_rank()}.txt"), "a") as f:
            f.write(f"{i}\n")
        return self.x[i], self.y[i]


def spread(preds, labels):
    """A user metric: the mean predicted margin of the true class."""
    return float(np.mean(preds[np.arange(len(labels)), labels.reshape(-1)] - preds.mean(axis=1)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    paddle.seed(7)
    model = paddle.nn.Sequential(paddle.nn.Linear(5, 8), paddle.nn.Tanh(), paddle.nn.Linear(8, 2))
    cfg = ps.RunConfig(checkpoint_dir=os.path.join(out, "ckpt"), use_cuda=False, batch_size=4)
    metrics = ["acc", "f1", "precision", "recall", "matthews", paddle.metric.Accuracy(name="paddle_acc"), spread]
    trainer = ps.Trainer(model, cfg, None, Logged(out), loss_fn=paddle.nn.CrossEntropyLoss(), metrics=metrics)
    result = trainer.eval()
    rows = trainer.predict(Logged(out), has_label=True)
    with open(os.path.join(out, f"result_{paddle.distributed.get_rank()}.json"), "w") as f:
        json.dump({"eval": result, "predict": rows.tolist()}, f)


if __name__ == "__main__":
    main()
