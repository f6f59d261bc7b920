"""Depths and layer-aligned blocks on each architecture, against groupings written by hand."""
import warnings

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_strategy as ps
from helpers import mlp


def prefixes(blocks, depth=None):
    """Each block as the sorted set of parameter-name prefixes (the owning layer, or `depth` components)."""
    def cut(name):
        owner = name.split(".")[:-1]
        return ".".join(owner if depth is None else owner[:depth])
    return [sorted({cut(n) for n in b}) for b in blocks]


def test_mlp_depths_and_blocks():
    model = mlp((4, 8, 8, 2))
    x = paddle.randn([3, 4])
    # matmul -> add -> relu -> matmul -> add -> relu -> matmul -> add
    assert ps.param_depths(model, x) == {"0.weight": 1, "0.bias": 2, "2.weight": 4, "2.bias": 5,
                                         "4.weight": 7, "4.bias": 8}
    assert ps.infer_blocks(model, 3, x) == [["4.weight", "4.bias"], ["2.weight", "2.bias"],
                                            ["0.weight", "0.bias"]]
    # 3 units in 2 blocks: the block nearest the output takes the extra unit
    assert prefixes(ps.infer_blocks(model, 2, x)) == [["2", "4"], ["0"]]
    assert prefixes(ps.infer_blocks(model, 1, x)) == [["0", "2", "4"]]


def test_packing_ops_add_no_depth():
    class Tied(nn.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.create_parameter([4, 3])
            self.scale = self.create_parameter([3])

        def forward(self, x):  # transpose/reshape of weights only must not count as ops on data
            w = paddle.transpose(self.w, [1, 0]).reshape([3, 4]).transpose([1, 0])
            return paddle.matmul(x, w) * self.scale.astype("float32")

    assert ps.param_depths(Tied(), paddle.randn([2, 4])) == {"w": 1, "scale": 2}


def encoder(layers=4, d=16):
    paddle.seed(0)
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 32, dropout=0.1), layers)


def test_transformer_encoder_one_block_per_layer():
    model, x = encoder(), paddle.randn([2, 5, 16])
    blocks = ps.infer_blocks(model, 4, x)
    assert prefixes(blocks, 2) == [["layers.3"], ["layers.2"], ["layers.1"], ["layers.0"]]
    assert all(len(b) == 16 for b in blocks)  # q,k,v,out,linear1,linear2,norm1,norm2 weight+bias
    assert prefixes(ps.infer_blocks(model, 2, x), 2) == [["layers.2", "layers.3"], ["layers.0", "layers.1"]]
    # 3 blocks of 4 layers: sizes 2, 1, 1 with the extra at the output
    assert prefixes(ps.infer_blocks(model, 3, x), 2) == [["layers.2", "layers.3"], ["layers.1"], ["layers.0"]]


class MiniBert(nn.Layer):
    """Hand-written BERT shape: embeddings, encoder layers, pooler, classifier; forward takes a dict."""

    def __init__(self, vocab=50, d=16, layers=3):
        super().__init__()
        self.embeddings = nn.Layer()
        self.embeddings.word = nn.Embedding(vocab, d)
        self.embeddings.position = nn.Embedding(32, d)
        self.embeddings.token_type = nn.Embedding(2, d)
        self.embeddings.norm = nn.LayerNorm(d)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0), layers)
        self.pooler = nn.Linear(d, d)
        self.classifier = nn.Linear(d, 2)

    def forward(self, batch):
        ids, types = batch["input_ids"], batch["token_type_ids"]
        pos = paddle.arange(ids.shape[1]).unsqueeze(0)
        e = self.embeddings
        h = e.norm(e.word(ids) + e.position(pos) + e.token_type(types))
        h = self.encoder(h)
        return self.classifier(paddle.tanh(self.pooler(h[:, 0])))


def bert_input():
    return {"input_ids": paddle.to_tensor([[1, 5, 7, 2]]), "token_type_ids": paddle.to_tensor([[0, 0, 1, 1]])}


def test_bert_like_natural_blocks_are_embeddings_layers_and_head():
    paddle.seed(0)
    model = MiniBert()
    blocks = ps.infer_blocks(model, 5, bert_input())  # embeddings + 3 layers + head (pooler+classifier)
    assert prefixes(blocks, 3) == [["classifier", "pooler"], ["encoder.layers.2"], ["encoder.layers.1"],
                                   ["encoder.layers.0"], ["embeddings.norm", "embeddings.position",
                                                          "embeddings.token_type", "embeddings.word"]]
    # Fewer blocks: whole top-level units, never a layer cut in two
    assert prefixes(ps.infer_blocks(model, 3, bert_input()), 1) == [["classifier", "pooler"], ["encoder"],
                                                                    ["embeddings"]]
    # One more block than the natural 6 units: the largest unit (an encoder layer, 16 tensors, before the
    # 5-tensor embeddings) is split into attention, norm1, linear1, linear2, norm2 -> 10 units in 7 blocks
    assert ps.infer_blocks(model, 7, bert_input()).units == [
        ["classifier", "pooler"], ["encoder.layers.2", "encoder.layers.1"],
        ["encoder.layers.0.norm2", "encoder.layers.0.linear2"], ["encoder.layers.0.linear1"],
        ["encoder.layers.0.norm1"], ["encoder.layers.0.self_attn"], ["embeddings"]]


def test_resnet_residual_blocks_and_stages_stay_whole():
    from paddle.vision.models import resnet18
    paddle.seed(0)
    model = resnet18(pretrained=False, num_classes=10)
    x = paddle.randn([1, 3, 32, 32])
    # units: conv1, bn1, layer1..layer4, fc (7) -> 4 blocks of 2, 2, 2, 1
    assert prefixes(ps.infer_blocks(model, 4, x), 1) == [["fc", "layer4"], ["layer2", "layer3"],
                                                         ["bn1", "layer1"], ["conv1"]]
    # 10 blocks: the stages with a downsample branch (15 tensors) split first, largest (layer4) first:
    # fc, layer4.1, layer4.0, layer3.1, layer3.0, layer2.1, layer2.0, layer1, bn1, conv1
    blocks = ps.infer_blocks(model, 10, x)
    assert prefixes(blocks, 2) == [["fc"], ["layer4.1"], ["layer4.0"], ["layer3.1"], ["layer3.0"], ["layer2.1"],
                                   ["layer2.0"], ["layer1.0", "layer1.1"], ["bn1"], ["conv1"]]
    # 12 blocks: layer4.0 itself is split; its downsample branch reads the block input at the same depth as
    # conv1, so the two (with bn1) stay one unit
    blocks = ps.infer_blocks(model, 12, x)
    assert ["layer4.0.bn1+layer4.0.conv1+layer4.0.downsample"] in [
        ["+".join(sorted(u.split("+"))) for u in units] for units in blocks.units]
    assert len(blocks) == 12


def test_mobilenet_every_parameter_once_and_units_whole():
    from paddle.vision.models import mobilenet_v2
    paddle.seed(0)
    model = mobilenet_v2(pretrained=False, num_classes=10)
    x = paddle.randn([1, 3, 32, 32])
    blocks = ps.infer_blocks(model, 8, x)
    names = [n for b in blocks for n in b]
    trainable = [n for n, p in model.named_parameters() if not p.stop_gradient]
    assert sorted(names) == sorted(trainable) and len(set(names)) == len(names)
    assert len(blocks) == 8
    block_of = {n: i for i, b in enumerate(blocks) for n in b}
    for unit in {".".join(n.split(".")[:2]) for n in names if n.startswith("features.")}:
        assert len({block_of[n] for n in names if n.startswith(unit + ".")}) == 1, unit
    assert blocks[0] == ["classifier.1.weight", "classifier.1.bias"] or "classifier.1.weight" in blocks[0]


def test_stacked_lstm_is_one_unit_and_fewer_units_warn():
    class Tagger(nn.Layer):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.lstm = nn.LSTM(8, 8, num_layers=2)
            self.fc = nn.Linear(8, 3)

        def forward(self, ids):
            out, _ = self.lstm(self.emb(ids))
            return self.fc(out)

    paddle.seed(0)
    model, ids = Tagger(), paddle.to_tensor([[1, 2, 3]])
    assert prefixes(ps.infer_blocks(model, 3, ids), 1) == [["fc"], ["lstm"], ["emb"]]
    with pytest.warns(UserWarning, match="only 3 layer-aligned units; using 3 blocks"):
        assert len(ps.infer_blocks(model, 5, ids)) == 3


def test_separate_grus_are_separate_units_and_several_inputs():
    class TwoTower(nn.Layer):
        def __init__(self):
            super().__init__()
            self.rnns = nn.LayerList([nn.GRU(4, 6), nn.GRU(6, 6)])
            self.side = nn.Linear(2, 6)
            self.head = nn.Linear(6, 2)

        def forward(self, x, extra):
            h, _ = self.rnns[0](x)
            h, _ = self.rnns[1](h)
            return self.head(h[:, -1] + self.side(extra))

    paddle.seed(0)
    model = TwoTower()
    args = (paddle.randn([2, 3, 4]), paddle.randn([2, 2]))
    # side reads `extra` at depth 1, like rnns.0 reads x: parallel branches overlap and form one unit
    assert prefixes(ps.infer_blocks(model, 3, args), 2) == [["head"], ["rnns.1"], ["rnns.0", "side"]]
    with pytest.warns(UserWarning, match="only 3 layer-aligned units"):
        assert len(ps.infer_blocks(model, 4, args)) == 3


def test_unused_parameters_join_their_sibling_with_a_warning():
    class WithSpare(nn.Layer):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)
            self.spare_head = nn.Linear(4, 2)  # never called in forward

        def forward(self, x):
            return self.head(paddle.nn.functional.relu(self.body(x)))

    paddle.seed(0)
    model = WithSpare()
    with pytest.warns(UserWarning, match="spare_head.weight, spare_head.bias"):
        blocks = ps.infer_blocks(model, 2, paddle.randn([2, 4]))
    assert prefixes(blocks) == [["head", "spare_head"], ["body"]]


def test_frozen_excluded_tied_once_deterministic():
    class TiedLM(nn.Layer):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.mid = nn.Linear(4, 4)
            self.frozen = nn.Linear(4, 4)
            self.frozen.weight.stop_gradient = True

        def forward(self, ids):
            h = self.frozen(self.mid(self.emb(ids)))
            return paddle.matmul(h, self.emb.weight, transpose_y=True)  # output tied to the input embedding

    paddle.seed(0)
    model, ids = TiedLM(), paddle.to_tensor([[1, 2]])
    blocks = ps.infer_blocks(model, 3, ids)
    names = [n for b in blocks for n in b]
    assert names.count("emb.weight") == 1 and "frozen.weight" not in names
    assert blocks == ps.infer_blocks(model, 3, ids)
    assert ps.param_depths(model, ids)["emb.weight"] == 1  # its first consumer is the lookup


def test_model_left_exactly_as_it_was():
    paddle.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1D(8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    model[2].eval()  # a mixed training state must come back as it was
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    modes = [m.training for m in model.sublayers(include_self=True)]
    rng = paddle.get_rng_state()[0].current_seed()
    expect_next = paddle.rand([3]).numpy()
    paddle.seed(rng)
    x = paddle.randn([4, 4])
    expect_next = paddle.rand([3]).numpy()
    paddle.seed(rng)
    x = paddle.randn([4, 4])
    ps.infer_blocks(model, 2, x)
    np.testing.assert_array_equal(paddle.rand([3]).numpy(), expect_next)  # RNG stream untouched
    assert [m.training for m in model.sublayers(include_self=True)] == modes
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[n])  # BatchNorm statistics too
        assert p.grad is None
    assert x.stop_gradient


def test_fallbacks_warn_and_say_what_was_used():
    model = mlp()
    with pytest.warns(UserWarning, match="no sample_input"):
        blocks = ps.infer_blocks(model, 3)
    assert prefixes(blocks) == [["4"], ["2"], ["0"]] and "registration order" in blocks.method

    class Broken(nn.Layer):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            raise RuntimeError("cannot run")

    with pytest.warns(UserWarning, match="tracing the forward on sample_input failed.*cannot run"):
        assert prefixes(ps.infer_blocks(Broken(), 2, paddle.randn([1, 2]))) == [["b"], ["a"]]


def test_describe_blocks_table():
    model, x = mlp(), paddle.randn([2, 4])
    text = ps.describe_blocks(model, ps.infer_blocks(model, 3, x))
    lines = text.splitlines()
    assert lines[0].split() == ["block", "tensors", "elements", "depths", "units"]
    assert lines[1].split() == ["0", "2", "18", "7-8", "4"]  # 8*2 weights + 2 biases
    assert lines[3].split() == ["2", "2", "40", "1-2", "0"]


def test_strategy_blocks_use_infer_blocks():
    model, x = mlp(), paddle.randn([2, 4])
    _, lr = ps.CombinedStrategy(scheduler={"discriminative": 3}).build(model, 5, sample_input=x)
    assert lr.block_names == ps.infer_blocks(model, 3, x)
    assert lr.block_multipliers == pytest.approx([1, 1 / 2.6, 1 / 2.6 ** 2])
