"""PaddleHub 1.x's TextClassificationDataset: TSV files in a folder, tokenized, as map-style splits.

File format (1.8's): one example per line, fields separated by tabs, no quoting: `text_a<TAB>label` or
`text_a<TAB>text_b<TAB>label` (sentence pairs); a predict file has no label (`text_a` or `text_a<TAB>text_b`).
`*_with_header=True` skips the file's first line. Labels are strings, mapped to their index in `label_list`
(or in `label_file`, one label per line).

Every line is checked while the files are read, before any model loads: a missing file, bytes that are not
UTF-8, a line with the wrong number of fields, an empty text and a label not in the label list are errors
naming the file and the line.
"""
from __future__ import annotations

import os

import paddle

from ._checks import check_bool, check_number, shown

__all__ = ["TextClassificationDataset", "TextSplit", "check_text_dataset_arguments", "SPLITS"]

SPLITS = ("train", "dev", "test", "predict")
_FIELDS = {False: "text_a, label", True: "text_a, text_b, label"}


def check_text_dataset_arguments(where: str, args: dict) -> dict:
    """Check TextClassificationDataset's arguments without reading anything (YAML: before anything loads);
    `where` prefixes the key names (`Train.dataset`). Returns them with the defaults filled in."""
    base = args.get("base_path")
    if not isinstance(base, (str, os.PathLike)) or not str(base):
        raise TypeError(f"{where}.base_path must be a folder path, got {shown(base)}.")
    for split in SPLITS:
        f = args.get(f"{split}_file")
        if f is not None and (not isinstance(f, (str, os.PathLike)) or not str(f)):
            raise TypeError(f"{where}.{split}_file must be a file name (in base_path) or None, got {shown(f)}.")
        check_bool(f"{where}.{split}_file_with_header", args.get(f"{split}_file_with_header", False))
    if not any(args.get(f"{s}_file") for s in ("train", "dev", "test")):
        raise ValueError(f"{where}: give at least one of train_file, dev_file, test_file (PaddleHub 1.x's rule).")
    labels, label_file = args.get("label_list"), args.get("label_file")
    if labels is not None and label_file is not None:
        raise ValueError(f"{where}: give label_list or label_file, not both (PaddleHub 1.x used label_list and "
                         f"ignored label_file with a warning), got label_list={shown(labels)}, "
                         f"label_file={shown(label_file)}.")
    if labels is None and label_file is None:
        raise ValueError(f"{where}: give label_list (e.g. [negative, positive]) or label_file (one label per line); "
                         f"a label's index in that list is its class.")
    if labels is not None:
        if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)) or not labels:
            raise TypeError(f"{where}.label_list must be a non-empty list of label strings, got {shown(labels)}.")
        for i, label in enumerate(labels):
            if not isinstance(label, str) or not label:
                raise TypeError(f"{where}.label_list[{i}] must be a non-empty string (as the label column holds it; "
                                f"quote numbers in YAML: '1'), got {shown(label)}.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"{where}.label_list has a label twice: {shown(list(labels))}.")
    elif not isinstance(label_file, (str, os.PathLike)) or not str(label_file):
        raise TypeError(f"{where}.label_file must be a file name (in base_path), got {shown(label_file)}.")
    check_number(f"{where}.max_seq_len", args.get("max_seq_len", 128), low=3, integer=True)
    tokenizer = args.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)) \
            and not hasattr(tokenizer, "encode_batch"):
        raise TypeError(f"{where}.tokenizer must be a tokenizer.json path, a tokenizers.Tokenizer or None (the "
                        f"embedded MiniLM tokenizer), got {shown(tokenizer)}.")
    return args


def check_files_exist(where: str, args: dict):
    """FileNotFoundError naming the argument and the path of the first file that is not there."""
    base = str(args["base_path"])
    if not os.path.isdir(base):
        raise FileNotFoundError(f"{where}.base_path: {base} is not a folder (relative paths are taken from the "
                                f"working directory {os.getcwd()}).")
    for key in [f"{s}_file" for s in SPLITS] + ["label_file"]:
        if args.get(key) is not None and not os.path.isfile(os.path.join(base, str(args[key]))):
            raise FileNotFoundError(f"{where}.{key}: {os.path.join(base, str(args[key]))} does not exist.")


def load_text_tokenizer(tokenizer):
    """None: the embedded all-MiniLM-L6-v2 tokenizer; a path: that tokenizer.json; else the object itself."""
    from .minilm import find_minilm_files, load_tokenizer
    if tokenizer is None:
        return load_tokenizer(find_minilm_files()["tokenizer.json"])
    if isinstance(tokenizer, (str, os.PathLike)):
        if not os.path.isfile(tokenizer):
            raise FileNotFoundError(f"tokenizer: {tokenizer} does not exist (a tokenizers tokenizer.json).")
        return load_tokenizer(tokenizer)
    return tokenizer


def _read_lines(path, with_header):
    """[(line number, fields)] of a TSV file: strict UTF-8 per line (a BOM at the start is dropped)."""
    with open(path, "rb") as f:
        raw = f.read()
    rows = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line and number == raw.count(b"\n") + 1:
            break  # after the last newline
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} line {number}: not UTF-8 (byte 0x{line[exc.start]:02x} at column "
                             f"{exc.start + 1}).") from None
        if number == 1 and with_header:
            continue
        if not text.strip():
            raise ValueError(f"{path} line {number}: empty line (one example per line, no blank lines).")
        rows.append((number, text.split("\t")))
    return rows


class TextSplit(paddle.io.Dataset):
    """One split, tokenized: samples (input_ids, label), with pairs (input_ids, token_type_ids, label); a predict
    split has no label. Batch them with paddle_strategy.data.collate_padded. `lines` are the source line numbers."""

    def __init__(self, name, path, ids, type_ids, labels, lines, texts):
        self.name, self.path = name, path
        self.ids, self.type_ids, self.labels, self.lines, self.texts = ids, type_ids, labels, lines, texts

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        fields = (self.ids[i],) if self.type_ids is None else (self.ids[i], self.type_ids[i])
        return fields if self.labels is None else fields + (self.labels[i],)

    def lengths(self):
        return [len(ids) for ids in self.ids]

    def head(self, n):
        """The first n samples, as a TextSplit."""
        def cut(x):
            return None if x is None else x[:n]
        return TextSplit(self.name, self.path, self.ids[:n], cut(self.type_ids), cut(self.labels), self.lines[:n],
                         self.texts[:n])

    def __repr__(self):
        return f"TextSplit({self.name!r}, {self.path!r}, {len(self)} samples{', pairs' if self.type_ids else ''})"


class TextClassificationDataset:
    """PaddleHub 1.x's TextClassificationDataset with its arguments, tokenized by the embedded all-MiniLM-L6-v2
    tokenizer (or `tokenizer`: a tokenizer.json path or a tokenizers.Tokenizer), truncated to max_seq_len tokens
    ([CLS] and [SEP]s included; a pair is cut longest-first).

    `.train`, `.dev`, `.test`, `.predict`: map-style datasets (TextSplit) for ps.Trainer, or None where the file
    was not given; `.split(name)`, `.label_list`, `.get_labels()`, `.num_labels`, `.pairs` (sentence pairs).
    """

    def __init__(self, base_path, train_file=None, dev_file=None, test_file=None, predict_file=None, label_file=None,
                 label_list=None, train_file_with_header=False, dev_file_with_header=False,
                 test_file_with_header=False, predict_file_with_header=False, tokenizer=None, max_seq_len=128):
        args = dict(locals())
        args.pop("self")
        where = "TextClassificationDataset"
        check_text_dataset_arguments(where, args)
        check_files_exist(where, args)
        self.base_path, self.max_seq_len = str(base_path), int(max_seq_len)
        self.label_list = list(label_list) if label_list is not None else self._read_labels(label_file)
        rows = {}
        for split in SPLITS:
            if args[f"{split}_file"] is not None:
                path = os.path.join(self.base_path, str(args[f"{split}_file"]))
                rows[split] = (path, _read_lines(path, args[f"{split}_file_with_header"]))
        self.pairs = self._pair_layout(rows)
        for split, (path, lines) in rows.items():
            self._check_rows(split, path, lines)
        self.tokenizer = load_text_tokenizer(tokenizer)
        self._splits = {s: self._encode(s, *rows[s]) if s in rows else None for s in SPLITS}

    # ---------------------------------------------------------------------------------------- reading
    def _read_labels(self, label_file):
        path = os.path.join(self.base_path, str(label_file))
        labels, seen = [], {}
        for number, fields in _read_lines(path, False):
            label = "\t".join(fields)
            if not label.strip():
                raise ValueError(f"{path} line {number}: empty label (one label per line, no blank lines).")
            if label in seen:
                raise ValueError(f"{path} line {number}: label {label!r} is also on line {seen[label]}.")
            seen[label] = number
            labels.append(label)
        if not labels:
            raise ValueError(f"{path}: no labels (one label per line).")
        return labels

    def _pair_layout(self, rows):
        """Whether examples are sentence pairs: from the first data line of the first labelled file (2 fields:
        single texts, 3: pairs), else of the predict file (1 or 2); every other line must agree."""
        labelled = [(split, path, lines) for split, (path, lines) in rows.items() if lines and split != "predict"]
        if not labelled and "predict" in rows and rows["predict"][1]:
            labelled = [("predict", *rows["predict"])]
        if not labelled:
            self._layout_from = "no lines"
            return False
        split, path, lines = labelled[0]
        single, pair, fields = ((1, 2, "(text_a) or 2 (text_a, text_b)") if split == "predict" else
                                (2, 3, "(text_a, label) or 3 (text_a, text_b, label)"))
        n = len(lines[0][1])
        if n not in (single, pair):
            raise ValueError(f"{path} line {lines[0][0]}: {n} tab-separated field(s); a {split} file has {single} "
                             f"{fields}.")
        self._layout_from = f"{os.path.basename(path)} line {lines[0][0]}"
        return n == pair

    def _check_rows(self, split, path, lines):
        labelled = split != "predict"
        want = 1 + self.pairs + labelled
        names = ("text_a, text_b" if self.pairs else "text_a") + (", label" if labelled else "")
        if not lines:
            raise ValueError(f"{path}: no examples in the {split} file.")
        index = {label: i for i, label in enumerate(self.label_list)}
        for number, fields in lines:
            if len(fields) != want:
                layout = "sentence pairs" if self.pairs else "single texts"
                raise ValueError(f"{path} line {number}: {len(fields)} tab-separated field(s), expected {want} "
                                 f"({names}: this dataset holds {layout}, as {self._layout_from} says).")
            for col, text in zip(("text_a", "text_b"), fields[:1 + self.pairs]):
                if not text.strip():
                    raise ValueError(f"{path} line {number}: {col} is empty.")
            if labelled and fields[-1] not in index:
                hint = (f" (is line 1 a header? set {split}_file_with_header: true)" if number == 1 else "")
                raise ValueError(f"{path} line {number}: unknown label {shown(fields[-1])}; the label list is "
                                 f"{', '.join(map(repr, self.label_list))}{hint}.")

    def _encode(self, split, path, lines):
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_len)
        texts = [tuple(f[:1 + self.pairs]) for _, f in lines]
        encoded = self.tokenizer.encode_batch([t if self.pairs else t[0] for t in texts])
        labels = None
        if split != "predict":
            index = {label: i for i, label in enumerate(self.label_list)}
            labels = [index[f[-1]] for _, f in lines]
        return TextSplit(split, path, [e.ids for e in encoded], [e.type_ids for e in encoded] if self.pairs else None,
                         labels, [n for n, _ in lines], texts)

    # ---------------------------------------------------------------------------------------- access
    def split(self, name) -> TextSplit:
        """The split `name` (train, dev, test, predict); ValueError if its file was not given."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {shown(name)}.")
        if self._splits[name] is None:
            raise ValueError(f"TextClassificationDataset: no {name}_file was given, so there is no {name} split.")
        return self._splits[name]

    train = property(lambda self: self._splits["train"])
    dev = property(lambda self: self._splits["dev"])
    test = property(lambda self: self._splits["test"])
    predict = property(lambda self: self._splits["predict"])

    def get_labels(self):
        return list(self.label_list)

    @property
    def num_labels(self):
        return len(self.label_list)

    def __repr__(self):
        sizes = ", ".join(f"{s} {len(d)}" for s, d in self._splits.items() if d is not None)
        return f"TextClassificationDataset({self.base_path!r}: {sizes}; labels {self.label_list})"
