"""The peer the benchmarks compare with: the same Transformer from KerasNLP layers.

`keras_nlp_transformer` assembles token + position embeddings
(`TokenAndPositionEmbedding`), `TransformerEncoder` and `TransformerDecoder`
stacks and a dense output layer, with explicit padding masks, as a functional
Keras model mapping `(source_ids, target_in_ids)` to logits — the interface of
`tf_transformer.Transformer`. With `norm_first=True` the KerasNLP layers are
pre-LN (`normalize_first`) and each stack ends with a LayerNorm, as ours do.
"""

import keras
import keras_hub


def keras_nlp_transformer(
    num_layers,
    d_model,
    num_heads,
    dff,
    dropout,
    source_vocab,
    target_vocab,
    source_length,
    target_length,
    norm_first=False,
):
    source = keras.Input((source_length,), dtype="int32")
    target = keras.Input((target_length,), dtype="int32")
    source_mask = keras.ops.not_equal(source, 0)
    target_mask = keras.ops.not_equal(target, 0)

    def final_norm(x):
        # Pre-LN leaves the last residual sum unnormalized; tf_transformer's
        # stacks end with a LayerNorm then, and so does the peer.
        if not norm_first:
            return x
        return keras.layers.LayerNormalization(epsilon=1e-5)(x)

    def embed(vocab, length, ids):
        layer = keras_hub.layers.TokenAndPositionEmbedding(vocab, length, d_model)
        return keras.layers.Dropout(dropout)(layer(ids))

    x = embed(source_vocab, source_length, source)
    for _ in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            dff, num_heads, dropout=dropout, normalize_first=norm_first
        )(x, padding_mask=source_mask)
    x = final_norm(x)
    y = embed(target_vocab, target_length, target)
    for _ in range(num_layers):
        y = keras_hub.layers.TransformerDecoder(
            dff, num_heads, dropout=dropout, normalize_first=norm_first
        )(y, x, decoder_padding_mask=target_mask, encoder_padding_mask=source_mask)
    y = final_norm(y)
    logits = keras.layers.Dense(target_vocab, dtype="float32")(y)
    return keras.Model((source, target), logits)
