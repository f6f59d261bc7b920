"""Evaluate a trained model on the config's Eval dataset.

    python tools/eval.py -c configs/ulmfit.yml                      # Global.save_model_dir/best_model
    python tools/eval.py -c configs/ulmfit.yml -o Global.checkpoints=output/ulmfit/step_00000126
    python tools/eval.py -c configs/ulmfit.yml -o Eval.dataset.split=test

The weights come from Global.checkpoints (a step_<n> checkpoint or a best_model directory, or a
.safetensors / .pdparams file), else Global.pretrained_model, else save_model_dir/best_model.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load, parser, speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()


def weights_path(g):
    path = g["checkpoints"] or g["pretrained_model"] or os.path.join(g["save_model_dir"], "best_model")
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights at {path} (set Global.checkpoints to a step_<n> or best_model "
                                f"directory or a .safetensors / .pdparams file).")
    return path


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    config = load(args)
    if not config.get("Eval"):
        raise ValueError("the config has no Eval section to evaluate on.")
    import paddle_strategy as ps
    from paddle_strategy.program import build_collate, build_dataset, build_loss, build_metrics, build_model
    path = weights_path(config["Global"])
    config["Global"]["pretrained_model"] = None
    data = build_dataset(config, "Eval")
    model = build_model(config)
    model.set_state_dict(ps.load_weights(path))
    run = ps.RunConfig(use_cuda=config["Global"]["use_gpu"], checkpoint_dir=os.path.dirname(path))
    trainer = ps.Trainer(model, run, None, data, loss_fn=build_loss(config), metrics=build_metrics(config),
                         collate_fn=build_collate(config),
                         eval_batch_size=config["Eval"]["loader"]["batch_size_per_card"])
    result = trainer.eval()
    print(f"{path} on {config['Eval']['dataset']['split']} ({len(data)} samples): "
          + " ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
