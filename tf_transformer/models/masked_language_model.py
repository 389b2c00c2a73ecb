"""BERT-style pretraining: an encoder that predicts the tokens hidden from it."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.masked_lm import MaskedLMHead
from tf_transformer.models._encoder_model import EncoderModel


@keras.saving.register_keras_serializable(package="tf_transformer")
class MaskedLanguageModel(EncoderModel):
    """An `Encoder` with a `MaskedLMHead`: masked-language-model pretraining.

    Feed it ids corrupted by `mask_tokens`; it returns vocabulary logits at
    every position, and its loss is the cross-entropy at the *selected*
    positions only, averaged over them: the other positions are not
    predictions the model was asked for. After pretraining, hand
    `model.encoder` to a `SequenceClassifier` and fine-tune.

    Train with `fit` on `(masked_ids, token_ids, selected)` triples (inputs,
    targets, sample weights), e.g. from `mask_tokens`. `compile` needs an
    optimizer; the loss is built in (a `loss` given to `compile` is an error),
    and metrics such as `"sparse_categorical_accuracy"` are weighted by
    `selected`, so they count the selected positions only.

    Args:
        encoder: an `Encoder` with `vocab_size` set.
        tie_weights: project onto the vocabulary with the encoder's token
            embedding matrix (section 3.4 of the paper; BERT does it).
            Defaults to True.
        activation: of the head's dense transform. Defaults to `"gelu"`.
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        token_ids: integer (batch, length), 0 is padding.
        padding_mask: optional boolean (batch, length), True at real tokens.
            Defaults to `token_ids != 0`.
        training: whether dropout is active.

    Returns:
        float32 logits (batch, length, vocab_size).

    Example:

    >>> encoder = Encoder(num_layers=1, d_model=16, num_heads=2, dff=32,
    ...                   vocab_size=40)
    >>> model = MaskedLanguageModel(encoder)
    >>> model(tf.constant([[4, 6, 9, 0]])).shape
    TensorShape([1, 4, 40])
    """

    def __init__(self, encoder, tie_weights=True, activation="gelu", **kwargs):
        super().__init__(encoder, **kwargs)
        self.tie_weights = validation.check_bool("tie_weights", tie_weights)
        validation.check_activation("activation", activation)
        self.activation = activation
        self.head = MaskedLMHead(
            encoder.vocab_size,
            tie_weights=tie_weights,
            activation=activation,
            layer_norm_epsilon=encoder.layer_kwargs["layer_norm_epsilon"],
            dtype=self.dtype_policy,
            name="masked_lm_head",
        )

    def build_head(self, hidden_shape):
        self.head.build(hidden_shape)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        if loss is not None:
            raise ValueError(
                "MaskedLanguageModel computes its own loss (cross-entropy at the "
                f"selected positions). Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, **kwargs)

    def call(self, token_ids, padding_mask=None, training=None):
        validation.check_integer_ids("token_ids", token_ids)
        validation.check_rank("token_ids", token_ids, {2})
        hidden, _, _ = self.encode(token_ids, padding_mask, training, False)
        embedding = None
        if self.tie_weights:
            embedding = self.encoder.embedding.token_embedding.embeddings
        return self.head(hidden, token_embedding=embedding)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        if y is None or sample_weight is None:
            raise ValueError(
                "MaskedLanguageModel trains on (masked_ids, token_ids, selected): "
                "targets and the selected positions as sample weights. Received: "
                f"y={'None' if y is None else 'a tensor'}, sample_weight="
                f"{'None' if sample_weight is None else 'a tensor'}"
            )
        per_token = keras.losses.sparse_categorical_crossentropy(
            y, y_pred, from_logits=True
        )  # (batch, length)
        weights = tf.cast(sample_weight, per_token.dtype)
        loss = tf.math.divide_no_nan(
            tf.reduce_sum(per_token * weights), tf.reduce_sum(weights)
        )
        for extra in self.losses:  # regularizers, if any
            loss += tf.cast(extra, loss.dtype)
        return loss

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape) + (self.encoder.vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tie_weights": self.tie_weights,
                "activation": keras.activations.serialize(
                    keras.activations.get(self.activation)
                ),
            }
        )
        return config
