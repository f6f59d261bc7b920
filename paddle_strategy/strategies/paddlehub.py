"""PaddleHub 1.x's four preset strategies, as translations onto CombinedStrategy (same arguments, order and
defaults as hub.strategy in PaddleHub 1.8)."""
from __future__ import annotations

from .._checks import check_number, did_you_mean, shown
from .combined import CombinedStrategy
from .settings import _check_factor, _check_params_layer, _span

__all__ = ["AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy", "ULMFiTStrategy"]


class _Preset(CombinedStrategy):
    _args = ()

    def __repr__(self):
        own = ", ".join(f"{k}={getattr(self, '_' + k)!r}" for k in self._args)
        return f"{type(self).__name__}({own}) -> {self._settings()}"

    __str__ = __repr__


class AdamWeightDecayStrategy(_Preset):
    """PaddleHub 1.x's BERT recipe: warmup, then linear (or noam) decay; decoupled weight decay that skips
    biases and normalization parameters; global-norm clip 1.0.

    lr_scheduler="linear_decay": lr * t / W for t < W, then lr * (T - t) / (T - W) down to 0 at T.
    lr_scheduler="noam_decay":   lr * t / W for t < W, then lr * sqrt(W / t).   (W = floor(T * warmup_proportion))
    """

    _args = ("learning_rate", "lr_scheduler", "warmup_proportion", "weight_decay", "optimizer_name")

    def __init__(self, learning_rate=1e-4, lr_scheduler="linear_decay", warmup_proportion=0.0,
                 weight_decay=0.01, optimizer_name="adam"):
        self._learning_rate, self._lr_scheduler = learning_rate, lr_scheduler
        self._warmup_proportion, self._weight_decay = warmup_proportion, weight_decay
        self._optimizer_name = optimizer_name
        if lr_scheduler not in ("linear_decay", "noam_decay"):
            raise ValueError(f"lr_scheduler={shown(lr_scheduler)} is not supported; use 'linear_decay' or "
                             f"'noam_decay'.{did_you_mean(lr_scheduler, ['linear_decay', 'noam_decay'])}")
        wp = check_number("warmup_proportion", warmup_proportion, low=0, high=1, high_open=True)
        if lr_scheduler == "noam_decay":
            if wp == 0:
                raise ValueError("warmup_proportion=0 with lr_scheduler='noam_decay': noam decays as "
                                 "sqrt(W / t) after W warmup steps and needs warmup_proportion > 0.")
            scheduler = {"warmup": wp, "noam_decay": True}
        else:
            scheduler = {"warmup": wp, "linear_decay": {"start_point": wp, "end_learning_rate": 0.0}}
        check_number("weight_decay", weight_decay, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate, scheduler=scheduler,
                         regularization={"weight_decay": weight_decay}, clip={"GlobalNorm": 1.0})


class _ConstantWithPenalty(_Preset):
    """A constant learning rate and one coupled penalty (`_penalty`: a regularization key) of strength
    regularization_coeff on the pretrained parameters."""

    _args = ("learning_rate", "optimizer_name", "regularization_coeff")
    _penalty = ""

    def __init__(self, learning_rate=1e-4, optimizer_name="adam", regularization_coeff=1e-3):
        self._learning_rate, self._optimizer_name = learning_rate, optimizer_name
        self._regularization_coeff = regularization_coeff
        check_number("regularization_coeff", regularization_coeff, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate,
                         regularization={self._penalty: regularization_coeff})


class DefaultFinetuneStrategy(_ConstantWithPenalty):
    """A constant learning rate and L2 (grad += c * w) on the pretrained parameters."""

    _penalty = "L2"


class L2SPFinetuneStrategy(_ConstantWithPenalty):
    """A constant learning rate and L2-SP (grad += c * (w - w0)) towards the pretrained weights."""

    _penalty = "L2SP"


class ULMFiTStrategy(_Preset):
    """ULMFiT (Howard & Ruder 2018): slanted triangular LR, discriminative fine-tuning (block k at
    lr * factor**-k) and gradual unfreezing (one more block per epoch).

    dis_params_layer / frz_params_layer ({structured name: layer}) replace dis_blocks / frz_blocks when given.
    """

    _frz_name, _frz_layer_name = "frz_blocks", "frz_params_layer"
    _args = ("learning_rate", "optimizer_name", "cut_fraction", "ratio", "dis_blocks", "factor", "dis_params_layer",
             "frz_blocks", "frz_params_layer")  # PaddleHub 1.x's order (v1.8), so positional calls keep working

    def __init__(self, learning_rate=1e-4, optimizer_name="adam", cut_fraction=0.1, ratio=32, dis_blocks=3,
                 factor=2.6, dis_params_layer=None, frz_blocks=3, frz_params_layer=None):
        for k in self._args:
            setattr(self, "_" + k, locals()[k])
        # checked under the names the caller wrote, before they become scheduler entries
        check_number("cut_fraction", cut_fraction, low=0, high=1, high_open=True)
        check_number("ratio", ratio, low=1)
        dis_blocks = check_number("dis_blocks", dis_blocks, low=0, integer=True)
        frz_blocks = check_number("frz_blocks", frz_blocks, low=0, integer=True)
        dis_params_layer = _check_params_layer("dis_params_layer", dis_params_layer)
        frz_params_layer = _check_params_layer("frz_params_layer", frz_params_layer)
        _check_factor("factor", factor, "dis_params_layer" if dis_params_layer else f"dis_blocks={dis_blocks}",
                      _span(0 if dis_params_layer else dis_blocks, dis_params_layer))
        scheduler = {
            "slanted_triangle": {"cut_fraction": cut_fraction, "ratio": ratio},
            "discriminative": {"blocks": 0 if dis_params_layer else dis_blocks,
                               "params_layer": dis_params_layer, "factor": factor},
            "gradual_unfreeze": {"blocks": 0 if frz_params_layer else frz_blocks,
                                 "params_layer": frz_params_layer},
        }
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate, scheduler=scheduler)
