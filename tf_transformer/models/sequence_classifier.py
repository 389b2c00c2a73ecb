"""Sequence → vector → class: an encoder with a classification head."""

import keras

from tf_transformer import validation
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.pooling import masked_mean
from tf_transformer.models._encoder_model import EncoderModel


@keras.saving.register_keras_serializable(package="tf_transformer")
class SequenceClassifier(EncoderModel):
    """An `Encoder` read as one vector per sequence, then one logit per class.

    The encoder turns (batch, length) ids into (batch, length, d_model)
    vectors. Pooling makes one vector of them:

    - `"class_token"` (BERT's `[CLS]`): the vector at position 0. The inputs
      start with a `[CLS]` token; through self-attention its vector gathers
      what the classifier needs from every other position. The spelling is
      `VisionTransformer`'s; `"cls"` is accepted as an alias.
    - `"mean"`: `masked_mean` of the vectors at the real (non-padding)
      positions.

    Dropout and a dense layer give float32 logits (batch, num_classes).

    Args:
        encoder: an `Encoder` with `vocab_size` set (it reads token ids).
        num_classes: number of classes.
        pooling: `"class_token"` or `"mean"`. Defaults to `"class_token"`.
        dropout: dropout before the dense layer. Defaults to 0.1.
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        token_ids: integer (batch, length); 0 is padding. With
            `"class_token"` pooling every row starts with the `[CLS]` id.
        padding_mask: optional boolean (batch, length), True at real tokens.
            Defaults to `token_ids != 0` (the mask the encoder's embedding
            implies).
        training: whether dropout is active.
        return_attention_scores: if True, return `(logits, weights)`, weights
            a list with one (batch, num_heads, length, length) tensor per
            encoder layer.

    Example:

    >>> encoder = Encoder(num_layers=1, d_model=16, num_heads=2, dff=32,
    ...                   vocab_size=40)
    >>> classifier = SequenceClassifier(encoder, num_classes=5)
    >>> classifier(tf.constant([[4, 17, 9, 0]])).shape
    TensorShape([1, 5])

    References:
        Devlin et al., "BERT", arXiv:1810.04805, section 3.
    """

    def __init__(
        self, encoder, num_classes, pooling="class_token", dropout=0.1, **kwargs
    ):
        super().__init__(encoder, **kwargs)
        self.num_classes = validation.check_int("num_classes", num_classes)
        pooling = "class_token" if pooling == "cls" else pooling  # the old spelling
        self.pooling = validation.check_choice(
            "pooling", pooling, ("class_token", "mean")
        )
        self.dropout = validation.check_rate("dropout", dropout)
        self.pooled_dropout = Dropout(
            self.dropout, dtype=self.dtype_policy, name="pooled_dropout"
        )
        # float32 logits, also under mixed precision
        self.classifier = keras.layers.Dense(
            self.num_classes, dtype="float32", name="classifier"
        )

    def build_head(self, hidden_shape):
        self.classifier.build((hidden_shape[0], hidden_shape[-1]))

    def call(
        self, token_ids, padding_mask=None, training=None, return_attention_scores=False
    ):
        validation.check_integer_ids("token_ids", token_ids)
        validation.check_rank("token_ids", token_ids, {2})
        hidden, mask, weights = self.encode(
            token_ids, padding_mask, training, return_attention_scores
        )
        if self.pooling == "class_token":
            pooled = hidden[:, 0, :]  # (batch, d_model): the [CLS] position
        else:
            pooled = masked_mean(hidden, mask)  # (batch, d_model)
        logits = self.classifier(self.pooled_dropout(pooled, training=training))
        if return_attention_scores:
            return logits, weights
        return logits

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "dropout": self.dropout,
            }
        )
        return config
