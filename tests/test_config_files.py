"""Issue 20, items 12-14: YAML configs and the command line — a size limit read before parsing, errors that name
the file or the key (encodings, deep nesting, `-o` values with spaces, path keys that name the wrong kind of
file), and no silent surprises (`~` and `$NAME` in paths, `010` read as octal)."""
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from paddle_strategy.config import MAX_CONFIG_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load_config
from paddle_strategy.program import check_config, checkpoint_location
from test_bad_config import ROOT, ULMFIT, _checked

TSV = os.path.join(ROOT, "configs", "text_classification_tsv.yml")


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# ------------------------------------------------------------------------------------------------ item 12
def test_12_a_config_over_1_mib_is_refused_before_it_is_parsed(tmp_path):
    f = write(tmp_path / "big.yml", open(ULMFIT).read() + "# " + "x" * (2 * MAX_CONFIG_BYTES) + "\n")
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:  # before: loaded (a 50 MB flow list: > 3 minutes, 3.6 GB)
        load_config(f)
    assert time.perf_counter() - start < 0.5
    assert str(info.value).startswith(f"{f}: {os.path.getsize(f):,} bytes; a config may have at most 1,048,576 bytes")


def test_12_many_values_without_aliases_are_refused_early_and_not_blamed_on_aliases(tmp_path):
    f = write(tmp_path / "list.yml", "Global:\n  x: [" + ",".join(["1"] * (MAX_YAML_NODES + 25_000)) + "]\n")
    assert os.path.getsize(f) < MAX_CONFIG_BYTES
    with pytest.raises(yaml.YAMLError) as info:
        load_config(f)
    message = str(info.value)
    assert f"this document has more than {MAX_YAML_NODES} values" in message and str(f) in message, message
    assert "alias" not in message  # before: "expands to ... values or more through aliases", for a file with none


# ------------------------------------------------------------------------------------------------ item 13
@pytest.mark.parametrize("name, data, words", [
    ("latin-1", "Global:\n  seed: 1\n  # caf\xe9\n".encode("latin-1"),
     ["not UTF-8 text: byte 0xe9 at line 3, column 8", "save the config as UTF-8"]),
    ("UTF-16", "Global:\n  seed: 1\n".encode("utf-16"), ["UTF-16", "save the config as UTF-8"]),
    ("binary", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), ["not UTF-8 text: byte 0x89 at line 1, column 1"]),
], ids=["latin-1", "UTF-16", "binary"])
def test_13_a_file_that_is_not_utf8_is_named(tmp_path, name, data, words):
    f = write(tmp_path / "c.yml", data)
    with pytest.raises(ValueError) as info:  # before: UnicodeDecodeError ... position 5, without the file
        load_config(f)
    assert not isinstance(info.value, UnicodeDecodeError)
    assert str(info.value).startswith(f"{f}: "), str(info.value)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_13_deep_nesting_is_refused_naming_the_file_and_line(tmp_path):
    f = write(tmp_path / "deep.yml", "Global:\n  x: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(yaml.YAMLError) as info:  # before: a bare RecursionError
        load_config(f)
    message = str(info.value)
    assert f"values nested more than {MAX_YAML_DEPTH} levels deep" in message
    assert f'in "{f}", line 2' in message, message
    f = write(tmp_path / "fine.yml", "Global:\n  x: " + "[" * 50 + "1" + "]" * 50 + "\n")
    x = load_config(f)["Global"]["x"]  # 50 levels are fine
    for _ in range(50):
        x = x[0]
    assert x == 1


def test_13_an_override_value_with_a_yaml_tag_stays_one_pair():
    with pytest.raises(TypeError) as info:  # before: split into Global.seed=!!binary and aGVsbG8=
        _checked(ULMFIT, "Global.seed=!!binary aGVsbG8=")
    assert str(info.value) == "Global.seed must be an integer, got b'hello' (bytes)."
    cfg = _checked(ULMFIT, "Global.seed=3 Global.epoch_num=4")  # several pairs in one -o still split
    assert (cfg["Global"]["seed"], cfg["Global"]["epoch_num"]) == (3, 4)


@pytest.mark.parametrize("content, words", [
    (b"\xff" * 64, ["is not a safetensors file", "give a .safetensors file"]),
    (b"Global:\n  seed: 1\n", ["is not a safetensors file", "header too large"]),
], ids=["garbage", "a YAML file"])
def test_13_pretrained_model_that_is_not_weights_is_named_before_the_model_loads(tmp_path, content, words):
    f = write(tmp_path / "weights.safetensors", content)
    with pytest.raises(ValueError) as info:  # before: SafetensorError after the model loaded, no key named
        _checked(ULMFIT, f"Global.pretrained_model={f}")
    assert str(info.value).startswith(f"Global.pretrained_model: {f} is not a safetensors file"), str(info.value)
    for w in words:
        assert w in str(info.value)
    f = write(tmp_path / "weights.pdparams", b"PK\x03\x04 a zip")
    with pytest.raises(ValueError, match=r"Global.pretrained_model: .* is not a .pdparams file"):
        _checked(ULMFIT, f"Global.pretrained_model={f}")


@pytest.mark.parametrize("where", ["a file", "/dev/null", "inside a file"])
def test_13_save_model_dir_that_is_not_a_folder_is_named(tmp_path, where):
    f = write(tmp_path / "notes.txt", "x")
    path = {"a file": str(f), "/dev/null": "/dev/null", "inside a file": str(f / "run")}[where]
    with pytest.raises(ValueError) as info:  # before: FileExistsError ... RunConfig.checkpoint_dir, model loaded
        _checked(ULMFIT, f"Global.save_model_dir={path}")
    message = str(info.value)
    assert message.startswith(f"Global.save_model_dir: '{path}' "), message
    assert {"a file": "is a file", "/dev/null": "is not a folder (a device",
            "inside a file": f"lies inside {f}, which is a file"}[where] in message


def test_13_tools_train_names_save_model_dir_before_loading_a_model():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", ULMFIT,
                           "-o", "Global.save_model_dir=/dev/null"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("ValueError: Global.save_model_dir: '/dev/null' is not a "
                                                           "folder"), proc.stderr[-2000:]
    assert "RunConfig" not in proc.stderr and "load_minilm" not in proc.stderr


def test_13_checkpoints_that_is_a_file_is_not_called_missing(tmp_path):
    f = write(tmp_path / "step_00000010", "x")
    g = _checked(ULMFIT, f"Global.checkpoints={f}")["Global"]
    with pytest.raises(ValueError) as info:  # before: "does not exist"
        checkpoint_location(g)
    assert str(info.value).startswith(f"Global.checkpoints: {f} is a file (it names the checkpoint to resume from")


# ------------------------------------------------------------------------------------------------ item 14
def test_14_home_and_environment_variables_expand_in_path_keys(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "tok").mkdir(parents=True)
    write(home / "tok" / "tokenizer.json", "{}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    cfg = _checked(ULMFIT, "Global.save_model_dir=~/runs/x", "Train.dataset.tokenizer=$HOME/tok/tokenizer.json")
    assert cfg["Global"]["save_model_dir"] == str(home / "runs" / "x")  # before: ./~/runs/x
    assert cfg["Train"]["dataset"]["tokenizer"] == str(home / "tok" / "tokenizer.json")
    assert checkpoint_location(cfg["Global"]) == {"checkpoint_dir": str(home / "runs" / "x")}
    cfg = _checked(ULMFIT, "Global.save_model_dir=${RUNS}/y", "Global.checkpoints=$RUNS/y")
    assert cfg["Global"]["save_model_dir"] == cfg["Global"]["checkpoints"] == str(tmp_path / "runs" / "y")
    assert not os.path.exists(tmp_path / "~") and not os.path.exists(tmp_path / "$HOME")
    with pytest.raises(ValueError, match=r"Global.save_model_dir: '\$NO_SUCH_VARIABLE/x' uses the environment "
                                         r"variable \$NO_SUCH_VARIABLE, which is not set"):
        _checked(ULMFIT, "Global.save_model_dir=$NO_SUCH_VARIABLE/x")
    with pytest.raises(ValueError, match=r"Global.pretrained_model: '~no_such_user_here/w.pdparams' starts with "
                                         r"~no_such_user_here, but there is no such user"):
        _checked(ULMFIT, "Global.pretrained_model=~no_such_user_here/w.pdparams")


def test_14_text_dataset_paths_expand(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(os.path.join(ROOT, "examples", "rotten_tomatoes_tsv"), data)
    monkeypatch.setenv("DATA", str(data))
    cfg = _checked(TSV, "Train.dataset.base_path=$DATA", "Eval=null")
    assert cfg["Train"]["dataset"]["base_path"] == str(data)


def test_14_integers_with_a_leading_zero_are_refused(tmp_path):
    f = write(tmp_path / "c.yml", "Global:\n  seed: 010\n")
    with pytest.raises(yaml.YAMLError) as info:  # before: seed 8 (YAML 1.1 octal), silently
        load_config(f)
    message = str(info.value)
    assert "the integer '010' has a leading zero, which YAML 1.1 reads as octal (8)" in message
    assert f'in "{f}", line 2, column 9' in message
    with pytest.raises(ValueError, match=r"-o Global.seed='010': the integer '010' has a leading zero"):
        _checked(ULMFIT, "Global.seed=010")
    f = write(tmp_path / "c.yml", "Global:\n  seed: 0\n  a: -0\n  b: 0x10\n  c: '010'\n  d: 0.5\n  e: 10\n")
    assert load_config(f)["Global"] == {"seed": 0, "a": 0, "b": 16, "c": "010", "d": 0.5, "e": 10}
    assert check_config(load_config(ULMFIT))["Global"]["seed"] == 0
