"""paddle_strategy._checks, the validation vocabulary: each helper's accepted values and the exact message of
each refusal (written out by hand here), then a few call sites reached through the public API."""
import math

import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy import _checks as C
from paddle_strategy.program import check_config
from paddle_strategy.schedules.registry import make_run_schedule


def _raises(exc, message, fn, *args, **kwargs):
    """Call fn and return nothing; fail unless it raises `exc` with exactly `message`."""
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message


# ---- shown / did_you_mean ----

def test_shown_is_repr_for_small_values_and_bounded_for_big_ones():
    assert C.shown("a") == "'a'" and C.shown([1, (2,)]) == "[1, (2,)]" and C.shown({"k": None}) == "{'k': None}"
    assert C.shown("x" * 300) == "'" + "x" * 199 + "..."  # 200 characters, then "..."
    assert C.shown(list(range(1000)), limit=10) == "[0, 1, 2, ..."
    assert C.shown(10 ** 5000) == "<an int of 5001 digits>"  # Python refuses str() of an int this long


def test_did_you_mean_is_case_insensitive_and_quiet_without_a_close_match():
    assert C.did_you_mean("warmpu", ["warmup", "decay"]) == " Did you mean 'warmup'?"
    assert C.did_you_mean("globalnorm", ["GlobalNorm", "Norm"]) == " Did you mean 'GlobalNorm'?"  # its spelling
    assert C.did_you_mean("f2", ["f1", "acc"]) == " Did you mean 'f1'?"
    assert C.did_you_mean("zzz", ["warmup", "decay"]) == ""


# ---- keys ----

def test_unknown_key_error_names_key_value_allowed_keys_and_suggestion():
    err = C.unknown_key_error("Global", "epoch_nums", ["seed", "epoch_num"], value=2)
    assert isinstance(err, ValueError)
    assert str(err) == ("Global: unknown key 'epoch_nums' (value 2). Allowed keys: epoch_num, seed. "
                        "Did you mean 'epoch_num'?")
    assert str(C.unknown_key_error("x", "qqq", ["b", "a"])) == "x: unknown key 'qqq'. Allowed keys: a, b."
    assert str(C.unknown_key_error("x", "last_epoch", ["a"], value=3, why=" (resume by the step)")) == \
        "x: unknown key 'last_epoch' (value 3) (resume by the step). Allowed keys: a."
    long = C.unknown_key_error("x", "k", ["a"], value="v" * 1000)
    assert len(str(long)) < 260 and "(value 'vvv" in str(long)


def test_missing_keys_error_lists_every_missing_key():
    assert str(C.missing_keys_error("s", ["b", "c"], ["c", "a", "b"])) == \
        "s: missing key(s) 'b', 'c'. Allowed keys: a, b, c."
    assert str(C.missing_keys_error("s", ["a"], ["a"], hint="Fill it in.")) == \
        "s: missing key(s) 'a'. Allowed keys: a. Fill it in."


def test_check_keys():
    given = {"a": 1}
    assert C.check_keys("s", given, ("a", "b"), required=("a",)) is given
    _raises(ValueError, "s: unknown key 'bb' (value 2). Allowed keys: a, b. Did you mean 'b'?",
            C.check_keys, "s", {"a": 1, "bb": 2}, ("a", "b"))
    _raises(ValueError, "s: missing key(s) 'a', 'b'. Allowed keys: a, b, c.",
            C.check_keys, "s", {"c": 1}, ("a", "b", "c"), required=("a", "b"))
    _raises(TypeError, "s must be a mapping, got [1] (list).", C.check_keys, "s", [1], ("a",))
    _raises(ValueError, "s: unknown key 1 (value 'x'). Allowed keys: a.", C.check_keys, "s", {1: "x"}, ("a",))


def test_merge_dict_names_the_unknown_key_and_its_value():
    defaults = {"a": 1, "sub": {"x": 0}}
    assert C.merge_dict("cfg", defaults, {"sub": {"x": 5}}) == {"a": 1, "sub": {"x": 5}}
    assert defaults == {"a": 1, "sub": {"x": 0}}  # not modified
    _raises(ValueError, "cfg: unknown key 'aa' (value 3). Allowed keys: a, sub. Did you mean 'a'?",
            C.merge_dict, "cfg", defaults, {"aa": 3})
    _raises(ValueError, "cfg['sub']: unknown key 'y' (value 4). Allowed keys: x.",
            C.merge_dict, "cfg", defaults, {"sub": {"y": 4}}, nested=("sub",))
    _raises(TypeError, "cfg must be a dict, got 3 (int).", C.merge_dict, "cfg", defaults, 3)


# ---- values ----

def test_check_number_accepts_finite_numbers_in_bounds():
    assert C.check_number("n", 3) == 3.0 and type(C.check_number("n", 3)) is float
    assert C.check_number("n", 3, integer=True) == 3 and type(C.check_number("n", 3, integer=True)) is int
    assert C.check_number("n", 0.5, low=0, high=1, high_open=True) == 0.5
    assert C.check_number("n", 0, low=0) == 0.0  # a closed bound includes its end


@pytest.mark.parametrize("value, kwargs, exc, message", [
    (True, {}, TypeError, "n must be a number, got True (bool)."),
    ("1", {}, TypeError, "n must be a number, got '1' (str)."),
    (1.5, {"integer": True}, TypeError, "n must be an integer, got 1.5 (float)."),
    (math.nan, {}, ValueError, "n must be finite, got nan."),
    (-math.inf, {}, ValueError, "n must be finite, got -inf."),
    (10 ** 400, {}, ValueError, "n must be within the float range (about 1.8e308), got <an int of 401 digits>."),
    (0, {"low": 0, "low_open": True}, ValueError, "n must be > 0, got 0."),
    (-1, {"low": 0}, ValueError, "n must be >= 0, got -1."),
    (1, {"low": 0, "high": 1, "high_open": True}, ValueError, "n must be in [0, 1), got 1."),
    (2, {"high": 1}, ValueError, "n must be <= 1, got 2."),
], ids=lambda p: C.shown(p, 30))
def test_check_number_refusals(value, kwargs, exc, message):
    _raises(exc, message, C.check_number, "n", value, **kwargs)


def test_check_lr_divisor_steps():
    assert C.check_lr("lr", 0) == 0.0 and C.check_lr("lr", 1e-3) == 1e-3
    _raises(ValueError, "lr must be >= 0, got -0.1.", C.check_lr, "lr", -0.1)
    assert C.check_divisor("div", 1) == 1.0 and C.check_divisor("div", 25) == 25.0
    _raises(ValueError, "div must be >= 1 (the peak learning rate is divided by it; 0.5 would put the schedule "
                        "above its own peak), got 0.5.", C.check_divisor, "div", 0.5)
    _raises(ValueError, "div must be > 0, got 0.", C.check_divisor, "div", 0)
    assert C.check_steps("steps", 0) == 0 and C.check_steps("steps", 5, low=1) == 5
    _raises(ValueError, "steps must be >= 1, got 0.", C.check_steps, "steps", 0, low=1)
    _raises(TypeError, "steps must be an integer, got 2.0 (float).", C.check_steps, "steps", 2.0)


def test_check_bool_takes_only_true_and_false():
    assert C.check_bool("flag", True) is True and C.check_bool("flag", False) is False
    for value, message in [(1, "flag must be True or False, got 1 (int)."),
                           ("yes", "flag must be True or False, got 'yes' (str)."),
                           (None, "flag must be True or False, got None (NoneType)."),
                           ("x" * 500, "flag must be True or False, got '" + "x" * 199 + "... (str).")]:
        _raises(TypeError, message, C.check_bool, "flag", value)


def test_check_choice():
    assert C.check_choice("mode", "min", ("min", "max")) == "min"
    _raises(ValueError, "mode must be one of 'min', 'max', got 'mni'. Did you mean 'min'?",
            C.check_choice, "mode", "mni", ("min", "max"))
    _raises(ValueError, "mode must be one of 'min', 'max', got 'Min'. Did you mean 'min'?",  # exact case only
            C.check_choice, "mode", "Min", ("min", "max"))
    _raises(ValueError, "mode must be one of 'min', 'max', got 3.", C.check_choice, "mode", 3, ("min", "max"))


def test_check_numbers():
    assert C.check_numbers("b", (1, 2.5)) == [1, 2.5]
    assert C.check_numbers("b", [3, 3, 4], increasing="weak", integer=True) == [3, 3, 4]
    _raises(TypeError, "b must be a list of numbers, got '12' (str).", C.check_numbers, "b", "12")
    _raises(ValueError, "b must have at least 2 element(s), got [1].", C.check_numbers, "b", [1], min_len=2)
    _raises(TypeError, "b[1] must be a finite number, got nan in [1, nan].", C.check_numbers, "b", [1, math.nan])
    _raises(TypeError, "b[0] must be a finite integer, got True in [True].", C.check_numbers, "b", [True],
            integer=True)
    _raises(ValueError, "b[1] must be >= 0, got -1 in [1, -1].", C.check_numbers, "b", [1, -1], low=0)
    _raises(ValueError, "b must be strictly increasing, got [1, 1].", C.check_numbers, "b", [1, 1],
            increasing="strict")
    _raises(ValueError, "b must be increasing, got [2, 1].", C.check_numbers, "b", [2, 1], increasing="weak")


def test_check_strings():
    assert C.check_strings("names", ("bias", "norm")) == ["bias", "norm"]
    assert C.check_strings("names", []) == []
    _raises(TypeError, "names must be a list of strings, got 'bias' (str).", C.check_strings, "names", "bias")
    _raises(TypeError, "names[1] must be a string, got 3.", C.check_strings, "names", ["a", 3])
    _raises(TypeError, "names[0] must be a non-empty string, got ''.", C.check_strings, "names", [""],
            non_empty=True)


def test_schedules_last_epoch_check():
    from paddle_strategy.schedules import _validate as V
    V.check_last_epoch("last_epoch", -1)
    with pytest.raises(ValueError, match=r"^last_epoch must be -1, got 3: .*restoring the step count"):
        V.check_last_epoch("last_epoch", 3)


# ---- call sites speak it (public API) ----

def test_call_sites_use_the_vocabulary():
    _raises(TypeError, "scheduler['noam_decay'] must be True or False, got 1 (int).",
            ps.CombinedStrategy, scheduler={"noam_decay": 1})
    _raises(TypeError, "FineTuneStrategy: train_bn must be True or False, got 'no' (str).",
            ps.FineTuneStrategy, 2, train_bn="no")
    _raises(TypeError, "AdamWarmupStrategy: amsgrad must be True or False, got 0 (int).",
            ps.AdamWarmupStrategy, 10, 1, amsgrad=0)
    with pytest.raises(ValueError) as info:
        ps.CombinedStrategy(scheduler={"reduce_on_plateau": {"patiense": 2}})
    assert str(info.value).startswith("scheduler['reduce_on_plateau']: unknown key 'patiense' (value 2). Allowed "
                                      "keys: ")
    assert str(info.value).endswith(" Did you mean 'patience'?")
    model = paddle.nn.Linear(2, 2)
    config = {"name": "Adam", "lr": {"name": "Cosine", "learning_rate": 0.1},
              "regularizer": {"name": "L2", "factr": 1e-4}}
    _raises(ValueError, "Optimizer.regularizer: unknown key 'factr' (value 0.0001). Allowed keys: factor, name. "
                        "Did you mean 'factor'?", ps.build_optimizer, config, 1, 2, model)
    with pytest.raises(ValueError) as info:
        make_run_schedule("cosine_decay", {"learning_rate": 0.1, "steps_per_epoch": 5}, total_steps=10)
    assert str(info.value).startswith("schedule 'cosine_decay': unknown key 'steps_per_epoch' (value 5); the run's "
                                      "length is set by the training run")
    assert "Allowed keys: alpha, decay_steps, learning_rate, min_lr, " in str(info.value)


def test_yaml_sections_use_check_keys_and_check_bool():
    base = {"Global": {"epoch_num": 1}, "Architecture": {"name": "MiniLMClassifier"},
            "Train": {"dataset": {"name": "RottenTomatoes"}}}
    _raises(ValueError, "Train: missing key(s) 'dataset'. Allowed keys: dataset, loader.",
            check_config, dict(base, Train={"loader": {}}))
    _raises(TypeError, "Global.use_gpu must be True or False, got 'yes' (str).",
            check_config, dict(base, Global={"use_gpu": "yes"}))
    _raises(TypeError, "Train.loader.shuffle must be True or False, got 1 (int).",
            check_config, dict(base, Train={"dataset": {"name": "RottenTomatoes"}, "loader": {"shuffle": 1}}))
    _raises(ValueError, "Train.dataset.split must be one of 'train', 'dev', 'test', got 'tset'. Did you mean 'test'?",
            check_config, dict(base, Train={"dataset": {"name": "RottenTomatoes", "split": "tset"}}))
