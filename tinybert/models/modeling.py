"""BERT, the TinyBERT student and ERNIE in PaddlePaddle, with PaddleNLP's class and parameter names.

One encoder, three heads:

    BertModel / TinyBertModel / ErnieModel  embeddings -> L x (self-attention, feed-forward) -> pooler
    Bert/TinyBert/ErnieForSequenceClassification  pooler output -> classifier (TinyBERT puts a ReLU in front)
    Bert/ErnieForMaskedLM                hidden states -> transform -> LayerNorm -> tied vocabulary projection

ERNIE (1.0 and 3.0, PaddleNLP's `ernie`, encoder under `ernie.`) is BERT's encoder, pooler and masked-LM head
with other embeddings (ErnieEmbeddings: the [PAD] row reads as zeros, and ERNIE 3.0's task-type embeddings
when use_task_id), its own config defaults (ErnieConfig) and the activation its config names (relu for 1.0).

Every forward returns a `ModelOutput`. Besides the usual outputs it can return what TinyBERT's
intermediate-layer distillation needs (Jiao et al., 2020, eq. 3-7):

    hidden_states     L+1 tensors [B, S, H]; [0] is the embedding-layer output
    attention_scores  L tensors [B, heads, S, S] = Q K^T / sqrt(d_head), taken BEFORE the padding mask
                      is added and before softmax (the paper distils the unnormalised scores)

Weights: constructing a model initialises it once, at the end of the top-level model's constructor
(PretrainedBert.init_weights: PaddleNLP's N(0, initializer_range)); an encoder built inside a head model is
built with initialise=False and initialised with its head. from_pretrained builds without initialising and
loads the checkpoint; only weights the checkpoint lacks (a new head) are initialised.

Checkpoints use PaddleNLP's folder layout: model_state.pdparams (or model.safetensors),
model_config.json (PaddleNLP 2.x `init_args` form) and config.json (newer form). Parameter names
equal PaddleNLP's, so folders load in both directions without renaming; other layouts' names are mapped
by checkpoints.KEY_LAYOUTS. The configs of PaddleNLP's built-in names are in configs.py.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from tinybert import errors
from tinybert.data import tokenization
from tinybert.models import checkpoints, configs

# Added to the scores of padded keys before softmax. PaddleNLP uses the same value; it is safe in fp16.
MASK_NEGATIVE = -1e4


# ----------------------------------------------------------------------------------------------
# Config


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    pad_token_id: int = 0
    layer_norm_eps: float = 1e-12
    fit_size: int = 768              # TinyBERT: the teacher's hidden size, output width of fit_dense
    num_labels: int = 2
    label2id: dict[str, int] | None = None
    id2label: dict[int, str] | None = None
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob (PaddleNLP's `dropout`)

    def __post_init__(self) -> None:
        # label2id is the source of truth when given; JSON turns id2label's int keys into strings.
        if self.label2id:
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
            self.id2label = {v: k for k, v in self.label2id.items()}
            self.num_labels = len(self.label2id)
        elif self.id2label:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.label2id = {v: k for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
        if self.hidden_size % self.num_attention_heads:
            raise errors.UserError(f"hidden_size {self.hidden_size} is not a multiple of "
                                f"num_attention_heads {self.num_attention_heads}")

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["id2label"] is not None:
            d["id2label"] = {str(k): v for k, v in d["id2label"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        """Accepts the flat form (config.json) and PaddleNLP 2.x's model_config.json form."""
        d = dict(d)
        paddlenlp_form = "init_args" in d or "init_class" in d
        if "init_args" in d:  # {"init_args": [{...encoder args..., "init_class": "BertModel"}], "num_classes": 3}
            args = d.pop("init_args")
            inner = args[0] if args and isinstance(args[0], dict) else {}
            if "init_args" in inner:  # nested once more in some saved heads
                inner = {**inner.pop("init_args")[0], **inner}
            d = {**inner, **d}
        if "num_classes" in d and "num_labels" not in d:
            d["num_labels"] = d["num_classes"]
        if "dropout" in d and d.get("classifier_dropout") is None:
            d["classifier_dropout"] = d["dropout"]
        if paddlenlp_form and "type_vocab_size" not in d:
            d["type_vocab_size"] = 16  # PaddleNLP's default when a config leaves it out
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ErnieConfig(BertConfig):
    """PaddleNLP's ErnieConfig: BERT's fields with ERNIE's defaults (used when a config leaves a field out),
    plus ERNIE 3.0's task-type embeddings."""

    type_vocab_size: int = 16        # PaddleNLP's ErnieConfig default (ERNIE 1.0 configs say 2, 3.0 say 4)
    use_task_id: bool = False        # ERNIE 3.0: add task_type_embeddings[task id] to every token
    task_type_vocab_size: int = 3
    task_id: int = 0                 # the task id of every token when none is given (PaddleNLP: config.task_id)

    def __post_init__(self) -> None:
        super().__post_init__()
        # PaddleNLP's ErniePretrainedModel._init_weights sets every LayerNorm's epsilon to 1e-12, whatever the
        # config says; ERNIE's outputs are those of 1e-12.
        self.layer_norm_eps = 1e-12


# ----------------------------------------------------------------------------------------------
# Layers

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x, approximate=False),       # exact erf GELU, as BERT and PaddleNLP use
    "gelu_new": lambda x: F.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate=True),
    "relu": F.relu,
    "tanh": paddle.tanh,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise errors.UserError(f"hidden_act {name!r} is not supported (choose from {sorted(ACTIVATIONS)})")
    return ACTIVATIONS[name]


@dataclass
class ModelOutput:
    logits: paddle.Tensor | None = None
    last_hidden_state: paddle.Tensor | None = None
    pooler_output: paddle.Tensor | None = None
    hidden_states: tuple[paddle.Tensor, ...] | None = None
    attention_scores: tuple[paddle.Tensor, ...] | None = None


class BertEmbeddings(nn.Layer):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        # 0, 1, ..., S-1 for every row; cumsum keeps the length symbolic for static-graph export.
        position_ids = paddle.cumsum(paddle.ones_like(input_ids), axis=-1) - 1
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(input_ids)
        x = self.word_embeddings(input_ids)
        x = x + self.position_embeddings(position_ids)
        x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))


class ErnieEmbeddings(nn.Layer):
    """PaddleNLP's ErnieEmbeddings: BERT's, except that the [PAD] token's word embedding reads as zeros
    (padding_idx), token types are added only when type_vocab_size > 0, and with use_task_id (ERNIE 3.0)
    a task-type embedding is added too (task ids default to config.task_id, 0, at every position)."""

    def __init__(self, config: ErnieConfig):
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h) if config.type_vocab_size > 0 else None
        self.task_type_embeddings = nn.Embedding(config.task_type_vocab_size, h) if config.use_task_id else None
        self.task_id = config.task_id
        self.layer_norm = nn.LayerNorm(h, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None, task_type_ids=None):
        position_ids = paddle.cumsum(paddle.ones_like(input_ids), axis=-1) - 1
        x = self.word_embeddings(input_ids)
        x = x + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = paddle.zeros_like(input_ids)
            x = x + self.token_type_embeddings(token_type_ids)
        if self.task_type_embeddings is not None:
            if task_type_ids is None:
                task_type_ids = paddle.full_like(input_ids, self.task_id)
            x = x + self.task_type_embeddings(task_type_ids)
        return self.dropout(self.layer_norm(x))


class MultiHeadAttention(nn.Layer):
    """Self-attention that also returns the raw scores Q K^T / sqrt(d_head) (before mask and softmax)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        h = config.hidden_size
        self.q_proj = nn.Linear(h, h)
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.out_proj = nn.Linear(h, h)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def split_heads(self, x):  # [B, S, H] -> [B, heads, S, d_head]; 0 keeps a dim (export-friendly)
        return x.reshape([0, 0, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def forward(self, x, mask_bias):
        q = self.split_heads(self.q_proj(x))
        k = self.split_heads(self.k_proj(x))
        v = self.split_heads(self.v_proj(x))
        scores = paddle.matmul(q, k, transpose_y=True) * (self.head_dim ** -0.5)  # [B, heads, S, S]
        probs = F.softmax(scores + mask_bias, axis=-1)
        probs = self.dropout(probs)
        context = paddle.matmul(probs, v)                                         # [B, heads, S, d]
        context = context.transpose([0, 2, 1, 3]).reshape([0, 0, self.num_heads * self.head_dim])
        return self.out_proj(context), scores


class TransformerEncoderLayer(nn.Layer):
    """Post-LayerNorm block; attribute names follow paddle.nn.TransformerEncoderLayer (PaddleNLP's)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(config)
        self.linear1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.linear2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(config.hidden_dropout_prob)
        self.dropout2 = nn.Dropout(config.hidden_dropout_prob)
        self.act = activation(config.hidden_act)

    def forward(self, x, mask_bias):
        attn_out, scores = self.self_attn(x, mask_bias)
        x = self.norm1(x + self.dropout1(attn_out))
        ff = self.linear2(self.act(self.linear1(x)))
        x = self.norm2(x + self.dropout2(ff))
        return x, scores


class TransformerEncoder(nn.Layer):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layers = nn.LayerList([TransformerEncoderLayer(config) for _ in range(config.num_hidden_layers)])


class BertPooler(nn.Layer):
    """tanh(W h_[CLS] + b)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return paddle.tanh(self.dense(hidden[:, 0]))


class TiedDecoder(nn.Layer):
    """hidden @ W^T + b with W the word-embedding matrix [V, H] (shared, not a copy)."""

    def __init__(self, embedding_weight, vocab_size: int):
        super().__init__()
        self.weight = embedding_weight
        self.bias = self.create_parameter([vocab_size], is_bias=True)

    def forward(self, hidden):
        return paddle.matmul(hidden, self.weight, transpose_y=True) + self.bias


class BertLMPredictionHead(nn.Layer):
    """transform -> act -> LayerNorm -> vocabulary logits through the tied input embeddings."""

    def __init__(self, config: BertConfig, embedding_weight):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.decoder = TiedDecoder(embedding_weight, config.vocab_size)
        self.decoder_bias = self.decoder.bias  # PaddleNLP saves the bias under both names

    def forward(self, hidden):
        return self.decoder(self.layer_norm(self.act(self.transform(hidden))))


class BertOnlyMLMHead(nn.Layer):
    def __init__(self, config: BertConfig, embedding_weight):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, embedding_weight)


def attention_bias(input_ids, attention_mask, pad_token_id: int, dtype):
    """[B, S] 1 real / 0 pad -> additive [B, 1, 1, S] bias. None: pad tokens are masked (as PaddleNLP)."""
    if attention_mask is None:
        keep = (input_ids != pad_token_id).astype(dtype)
    else:
        keep = attention_mask.astype(dtype)
    return ((1.0 - keep) * MASK_NEGATIVE).unsqueeze([1, 2])



# ----------------------------------------------------------------------------------------------
# What every model shares: initialisation, loading, saving


class PretrainedBert(nn.Layer):
    """Config, weight initialisation, from_pretrained and save_pretrained for every model class below.

    Every model class builds its layers in __init__, then ends with `if initialise: self.init_weights()`,
    so the model being constructed is initialised once, whole. A subclass or a head model builds its
    parent or encoder with initialise=False: its own call covers those weights too."""

    base_model_prefix = "bert"   # attribute holding the encoder in head models
    model_type = "bert"
    config_class = BertConfig
    is_base_model = False
    has_mlm_head = False

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    @property
    def base(self) -> "BertModel":
        return self if self.is_base_model else getattr(self, self.base_model_prefix)

    def init_weights(self, only: set[str] | None = None) -> None:
        """PaddleNLP's initialisation: N(0, initializer_range) for every Linear and Embedding weight, zero
        Linear biases. LayerNorms keep Paddle's ones and zeros, the masked-LM decoder bias its zeros.

        only: parameter names to initialise (from_pretrained: just those the checkpoint lacks).
        """
        std = self.config.initializer_range
        # named_sublayers visits layers in construction order, so paddle.seed decides every weight.
        for lname, layer in self.named_sublayers(include_self=True):
            if not isinstance(layer, (nn.Linear, nn.Embedding)):
                continue
            prefix = f"{lname}." if lname else ""
            if only is None or prefix + "weight" in only:
                layer.weight.set_value(paddle.normal(0.0, std, layer.weight.shape).astype(layer.weight.dtype))
            if isinstance(layer, nn.Linear) and layer.bias is not None and (only is None or prefix + "bias" in only):
                layer.bias.set_value(paddle.zeros_like(layer.bias))

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, config: BertConfig | None = None,
                        **config_overrides: Any):
        """Build the model from a checkpoint folder (or a PaddleNLP cache name) and load its weights.

        config_overrides replace config fields, e.g. num_labels=3 or label2id={...} for a new head.
        A freshly initialised head is reported on stderr; a missing encoder weight is a UserError.
        The model is returned in eval mode; call .train() before training.
        """
        folder = checkpoints.resolve_model_dir(name_or_dir)
        recorded = checkpoints.model_type(folder, default=None)
        if recorded is not None and (recorded == "ernie") != (cls.model_type == "ernie"):
            raise errors.UserError(f"{folder} holds a model of type {recorded}, which {cls.__name__} cannot load: "
                                   f"load it with model_type {recorded} (e.g. --model_type {recorded})")
        config = config or read_config(folder, cls.config_class)
        if config_overrides:
            config = with_overrides(config, config_overrides, cls.config_class)
        tokenization.check_folder_vocab(folder, config.vocab_size)  # the model meets its vocabulary here
        weights = checkpoints.require_weights(folder)
        state = checkpoints.load_state(weights)
        # Not initialised: the checkpoint replaces the weights (and 110M random numbers take seconds).
        model = cls(config, initialise=False)
        if isinstance(model.base, TinyBertModel) and any("fit_denses." in k for k in state):
            model.base.add_fit_denses(initialise=False)  # v2 projections: no config field tells, only the keys
        fresh = model.load_checkpoint_state(state, source=str(weights))
        if fresh:
            model.init_weights(only=set(fresh))
        model.eval()
        return model

    def load_checkpoint_state(self, state: dict[str, np.ndarray], source: str = "checkpoint") -> list[str]:
        """Load numpy weights by PaddleNLP name; report what was missing or unused. Returns the missing names."""
        state = checkpoints.to_our_names(state, self.base_model_prefix, self.is_base_model)
        own = self.state_dict()
        prefix = "" if self.is_base_model else self.base_model_prefix + "."
        critical = (prefix + "embeddings.", prefix + "encoder.")

        to_load, fresh = {}, []
        for name, param in own.items():
            if name not in state:
                if name == "cls.predictions.decoder.weight":  # tied to the word embeddings
                    continue
                fresh.append(name)
                continue
            value = state[name]
            checkpoints.require_float(name, value, source)
            if tuple(value.shape) != tuple(param.shape):
                if name.startswith(critical):
                    raise errors.UserError(f"{source}: weight {name} has shape {list(value.shape)}, "
                                           f"the config asks for {list(param.shape)}")
                fresh.append(name)  # e.g. a classifier for another number of labels
                continue
            to_load[name] = value.astype(paddle_dtype_to_numpy(param.dtype), copy=False)

        missing_encoder = [k for k in fresh if k.startswith(critical)]
        if missing_encoder:
            raise errors.UserError(f"{source}: encoder weights missing: {_summarise(missing_encoder)} "
                                   f"(first: {missing_encoder[0]})")
        if self.has_mlm_head and any(k.startswith("cls.predictions.") for k in fresh):
            raise errors.UserError(f"{source}: this checkpoint has no masked-LM head (cls.predictions.*), "
                                   f"so it cannot predict masked words")
        self.set_state_dict(to_load)
        if fresh:
            _info(f"newly initialised (not in {source}): {_summarise(fresh)}")
        unused = sorted(set(state) - set(own))
        if unused:
            _info(f"unused weights in {source}: {_summarise(unused)}")
        return fresh

    # -- saving ---------------------------------------------------------------------------------

    def save_pretrained(self, save_dir: str | os.PathLike, safe_serialization: bool = False) -> None:
        """Write weights (model_state.pdparams, or model.safetensors), model_config.json and config.json."""
        save_dir = Path(save_dir)
        state = {k: v.numpy() for k, v in self.state_dict().items()}
        checkpoints.save_weights(state, save_dir, safe_serialization)
        checkpoints.write_json(save_dir / checkpoints.CONFIG_PADDLENLP, self.paddlenlp_config())
        checkpoints.write_json(save_dir / checkpoints.CONFIG_JSON, self.flat_config())

    def paddlenlp_config(self) -> dict[str, Any]:
        """PaddleNLP 2.x model_config.json: the encoder's args nested in init_args for head models."""
        c = self.config.to_dict()
        encoder_args = {k: c[k] for k in ENCODER_FIELDS}
        if self.model_type == "tinybert":
            encoder_args["fit_size"] = c["fit_size"]
        if self.model_type == "ernie":
            encoder_args.update({k: c[k] for k in ERNIE_FIELDS})
        base_class = {"bert": "BertModel", "tinybert": "TinyBertModel", "ernie": "ErnieModel"}[self.model_type]
        if self.is_base_model:
            return {**encoder_args, "init_class": base_class}
        out: dict[str, Any] = {"init_args": [{**encoder_args, "init_class": base_class}],
                               "init_class": type(self).__name__}
        if "SequenceClassification" in type(self).__name__:
            out["num_classes"] = c["num_labels"]
            if c["classifier_dropout"] is not None:
                out["dropout"] = c["classifier_dropout"]
        return out

    def flat_config(self) -> dict[str, Any]:
        """config.json: every field, plus architectures/model_type for PaddleNLP's and HF's auto classes."""
        c = self.config.to_dict()
        if c["id2label"] is None:  # written so that readers which count id2label get num_labels right
            c["id2label"] = {str(i): f"LABEL_{i}" for i in range(c["num_labels"])}
            c["label2id"] = {f"LABEL_{i}": i for i in range(c["num_labels"])}
        return {"architectures": [type(self).__name__], "model_type": self.model_type, **c}


ENCODER_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                  "type_vocab_size", "initializer_range", "pad_token_id", "layer_norm_eps")
ERNIE_FIELDS = ("use_task_id", "task_type_vocab_size", "task_id")



# ----------------------------------------------------------------------------------------------
# Models


class BertModel(PretrainedBert):
    """The encoder: embeddings -> layers -> pooler. ErnieModel swaps the embeddings (embeddings_class)."""

    is_base_model = True
    embeddings_class = BertEmbeddings

    def __init__(self, config: BertConfig, initialise: bool = True):
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = TransformerEncoder(config)
        self.pooler = BertPooler(config)
        if initialise:
            self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, output_hidden_states=False,
                output_attention_scores=False, num_layers=None) -> ModelOutput:
        x = self.embeddings(input_ids, token_type_ids)
        return self.encode(x, input_ids, attention_mask, output_hidden_states, output_attention_scores, num_layers)

    def encode(self, x, input_ids, attention_mask=None, output_hidden_states=False, output_attention_scores=False,
               num_layers=None) -> ModelOutput:
        """The encoder layers and the pooler over the embedding-layer output x [B, S, H] (BERT's and ERNIE's)."""
        layers = self.encoder.layers
        n = len(layers) if num_layers is None else num_layers
        if not 0 <= n <= len(layers):
            raise ValueError(f"num_layers={num_layers}, but the model has {len(layers)} layers")

        mask_bias = attention_bias(input_ids, attention_mask, self.config.pad_token_id, x.dtype)
        hidden_states, attention_scores = [x], []
        for layer in layers[:n]:
            x, scores = layer(x, mask_bias)
            hidden_states.append(x)
            attention_scores.append(scores)

        # The pooler runs only in a full forward pass: a caller that names num_layers wants encoder states
        # (both models in intermediate distillation), and a truncated run has no meaningful pooled output.
        pooled = self.pooler(x) if num_layers is None else None
        return ModelOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attention_scores=tuple(attention_scores) if output_attention_scores else None,
        )


class TinyBertModel(BertModel):
    """BERT of any depth and width plus the projections W_e, W_h of the paper (student width -> fit_size,
    the teacher's width), as PaddleNLP names them:

        fit_dense     one Linear for every hidden state (the original TinyBERT code)
        fit_denses    L+1 Linears, [i] for hidden_states[i] (PaddleNLP's v2 general TinyBERT); present
                      only when the checkpoint has them (from_pretrained looks), or after add_fit_denses()

    Neither is applied in forward; the distillation loss applies them (distill.fit_projection).
    """

    base_model_prefix = "tinybert"
    model_type = "tinybert"

    def __init__(self, config: BertConfig, initialise: bool = True):
        super().__init__(config, initialise=False)
        self.fit_dense = nn.Linear(config.hidden_size, config.fit_size)
        if initialise:
            self.init_weights()

    def add_fit_denses(self, initialise: bool = True) -> None:
        """Give the model PaddleNLP v2's per-layer projections (initialise=False: weights are about to load)."""
        c = self.config
        self.fit_denses = nn.LayerList([nn.Linear(c.hidden_size, c.fit_size) for _ in range(c.num_hidden_layers + 1)])
        if initialise:
            self.init_weights(only={k for k in self.state_dict() if k.startswith("fit_denses.")})


class ErnieModel(BertModel):
    """PaddleNLP's ErnieModel: ErnieEmbeddings, then BERT's encoder and pooler (the same forward contract).
    No fit_dense: a narrower ERNIE student gets its W_h from the distillation (distill.fit_projection)."""

    base_model_prefix = "ernie"
    model_type = "ernie"
    config_class = ErnieConfig
    embeddings_class = ErnieEmbeddings

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, output_hidden_states=False,
                output_attention_scores=False, num_layers=None, task_type_ids=None) -> ModelOutput:
        x = self.embeddings(input_ids, token_type_ids, task_type_ids)
        return self.encode(x, input_ids, attention_mask, output_hidden_states, output_attention_scores, num_layers)


class BertForSequenceClassification(PretrainedBert):
    """logits = W dropout(pooler_output) + b; num_labels=1 is regression."""

    encoder_class = BertModel

    def __init__(self, config: BertConfig, initialise: bool = True):
        super().__init__(config)
        # The encoder under PaddleNLP's attribute name: self.bert here, self.tinybert, self.ernie in subclasses.
        setattr(self, self.base_model_prefix, self.encoder_class(config, initialise=False))
        p = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        if initialise:
            self.init_weights()

    def classify(self, pooled):
        return self.classifier(self.dropout(pooled))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, output_hidden_states=False,
                output_attention_scores=False, num_layers=None) -> ModelOutput:
        out = self.base(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attention_scores, num_layers)
        if out.pooler_output is not None:
            out.logits = self.classify(out.pooler_output)
        return out


class TinyBertForSequenceClassification(BertForSequenceClassification):
    """PaddleNLP's TinyBERT head: logits = W relu(pooler_output) + b. Like PaddleNLP's, it has the
    dropout layer of BERT's head and never applies it."""

    base_model_prefix = "tinybert"
    model_type = "tinybert"
    encoder_class = TinyBertModel

    def classify(self, pooled):
        return self.classifier(F.relu(pooled))


class ErnieForSequenceClassification(BertForSequenceClassification):
    """PaddleNLP's ERNIE head, as BERT's: logits = W dropout(pooler_output) + b. Like PaddleNLP's, it passes
    no task ids: ERNIE 3.0 adds the task-type embedding of config.task_id (0) to every token."""

    base_model_prefix = "ernie"
    model_type = "ernie"
    config_class = ErnieConfig
    encoder_class = ErnieModel


class BertForMaskedLM(PretrainedBert):
    """Masked-word prediction (used by data augmentation). logits [B, S, V], or [N, V] at masked_positions."""

    has_mlm_head = True
    encoder_class = BertModel

    def __init__(self, config: BertConfig, initialise: bool = True):
        super().__init__(config)
        # The encoder under PaddleNLP's attribute name: self.bert here, self.ernie in ErnieForMaskedLM.
        setattr(self, self.base_model_prefix, self.encoder_class(config, initialise=False))
        self.cls = BertOnlyMLMHead(config, self.base.embeddings.word_embeddings.weight)
        if initialise:
            self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, output_hidden_states=False,
                output_attention_scores=False, num_layers=None, masked_positions=None) -> ModelOutput:
        out = self.base(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attention_scores, num_layers)
        if num_layers is not None and num_layers < self.config.num_hidden_layers:
            return out
        hidden = out.last_hidden_state
        if masked_positions is not None:
            # Project only the N masked positions (flat indices into B*S): V is large, N is small.
            hidden = paddle.gather(hidden.reshape([-1, hidden.shape[-1]]), masked_positions)
        out.logits = self.cls.predictions(hidden)
        return out


class ErnieForMaskedLM(BertForMaskedLM):
    """PaddleNLP's ErnieForMaskedLM: its head (ErnieLMPredictionHead) is BERT's, parameter for parameter
    (cls.predictions.transform, layer_norm, decoder tied to the word embeddings, decoder_bias), with the
    config's activation (relu for ERNIE 1.0)."""

    base_model_prefix = "ernie"
    model_type = "ernie"
    config_class = ErnieConfig
    encoder_class = ErnieModel


# ----------------------------------------------------------------------------------------------
# Configs and weights from a folder


def read_config(folder: Path, config_class: type[BertConfig] | None = None) -> BertConfig:
    """The config that wins in the folder (checkpoints.CONFIG_ORDER), else a built-in PaddleNLP name's.

    config_class: the model's (from_pretrained); by default ErnieConfig for an ERNIE folder
    (checkpoints.model_type), else BertConfig."""
    if config_class is None:
        config_class = ErnieConfig if checkpoints.model_type(folder) == "ernie" else BertConfig
    found = checkpoints.read_config_dict(folder)
    if found is not None:
        path, d = found
        try:
            return config_class.from_dict(d)
        except (TypeError, ValueError) as e:
            raise errors.DataError(path, None, f"not a valid model config ({e})") from None
    builtin = configs.builtin_config(folder.name)
    if builtin is not None:
        return config_class(**builtin)
    raise errors.UserError(f"{folder}: no {checkpoints.CONFIG_JSON} or {checkpoints.CONFIG_PADDLENLP} found")


def with_overrides(config: BertConfig, overrides: dict[str, Any], config_class: type[BertConfig]) -> BertConfig:
    """The config, as a config_class, with some fields replaced; new labels (num_labels, label2id, id2label)
    drop the old label names."""
    d = config.to_dict()
    if {"num_labels", "label2id", "id2label"} & set(overrides):
        d["label2id"] = d["id2label"] = None
    unknown = set(overrides) - set(d)
    if unknown:
        raise TypeError(f"unknown config fields: {sorted(unknown)}")
    d.update(overrides)
    return config_class.from_dict(d)


def _info(msg: str) -> None:
    print(f"info: {msg}", file=sys.stderr)


def _summarise(keys: list[str]) -> str:
    """'classifier.* (2), cls.predictions.* (5)': key groups, not hundreds of names."""
    groups: dict[str, int] = {}
    for k in keys:
        parts = k.split(".")
        group = ".".join(parts[:2]) if parts[0] in ("bert", "tinybert", "ernie", "cls") and len(parts) > 2 else parts[0]
        groups[group] = groups.get(group, 0) + 1
    return ", ".join(f"{g}.* ({n})" for g, n in sorted(groups.items()))


def paddle_dtype_to_numpy(dtype) -> str:
    name = str(dtype).replace("paddle.", "")
    return {"bfloat16": "float32"}.get(name, name)


# ----------------------------------------------------------------------------------------------
# Helpers for generic code

MODEL_CLASSES = {
    ("bert", "base"): BertModel,
    ("bert", "classification"): BertForSequenceClassification,
    ("bert", "mlm"): BertForMaskedLM,
    ("tinybert", "base"): TinyBertModel,
    ("tinybert", "classification"): TinyBertForSequenceClassification,
    ("ernie", "base"): ErnieModel,
    ("ernie", "classification"): ErnieForSequenceClassification,
    ("ernie", "mlm"): ErnieForMaskedLM,
}


def model_class(model_type: str, head: str) -> type[PretrainedBert]:
    """e.g. model_class("tinybert", "classification") -> TinyBertForSequenceClassification."""
    key = (model_type.lower(), head)
    if key not in MODEL_CLASSES:
        raise errors.UserError(f"no model for model_type={model_type!r}, head={head!r}; "
                               f"choose from {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[key]


def load_classifier(name_or_dir: str | os.PathLike, model_type: str | None = None,
                    **config_overrides: Any) -> PretrainedBert:
    """A trained classification folder, its class from --model_type or else from what its config records."""
    folder = checkpoints.resolve_model_dir(name_or_dir)
    cls = model_class(model_type or checkpoints.model_type(folder), "classification")
    return cls.from_pretrained(folder, **config_overrides)


def load_masked_lm(name_or_dir: str | os.PathLike, model_type: str | None = None) -> PretrainedBert:
    """A masked-LM folder (data augmentation): ErnieForMaskedLM for an ERNIE folder, else BertForMaskedLM
    (TinyBERT folders too: a masked-LM head is BERT's). model_type: 'ernie' or 'bert' to choose yourself."""
    folder = checkpoints.resolve_model_dir(name_or_dir)
    family = "ernie" if (model_type or checkpoints.model_type(folder)) == "ernie" else "bert"
    return model_class(family, "mlm").from_pretrained(folder)


def count_parameters(model: nn.Layer) -> int:
    """Distinct parameters (a tied weight counts once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += int(np.prod(p.shape))
    return total

