"""The Vision Transformer's pieces: patches, patch embedding, class token, learned
positions and the model, against Keras and KerasHub."""

import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tests.layer_testing import run_layer_test


def images(shape, seed=0):
    return tf.random.stateless_uniform(shape, seed=(seed, 3))


# ------------------------------------------------------------ extract_patches


@pytest.mark.parametrize(
    "shape, patch_size",
    [
        ((2, 8, 8, 1), 2),
        ((2, 8, 8, 1), 4),
        ((3, 8, 8, 1), 8),
        ((1, 6, 9, 3), 3),
        ((2, 12, 8, 2), 4),
        ((2, 4, 4, 5), 1),
    ],
)
def test_extract_patches_equals_keras_image_extract_patches_flattened(
    shape, patch_size
):
    x = images(shape)
    ours = tt.extract_patches(x, patch_size)
    theirs = keras.ops.image.extract_patches(x, patch_size)
    batch, height, width, channels = shape
    count = (height // patch_size) * (width // patch_size)
    theirs = np.reshape(theirs, (batch, count, patch_size * patch_size * channels))
    assert ours.shape == (batch, count, patch_size * patch_size * channels)
    np.testing.assert_array_equal(ours, theirs)


def test_extract_patches_reads_patches_left_to_right_then_top_to_bottom():
    # Pixel value = its index in the image, row by row.
    x = tf.reshape(tf.range(16, dtype=tf.float32), (1, 4, 4, 1))
    patches = tt.extract_patches(x, 2).numpy()[0]
    np.testing.assert_array_equal(
        patches, [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    )


def test_extract_patches_runs_in_tf_function_with_unknown_batch():
    graph = tf.function(
        lambda x: tt.extract_patches(x, 4),
        input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.float32)],
    )
    for batch in (1, 5):
        x = images((batch, 8, 8, 3), seed=batch)
        np.testing.assert_array_equal(graph(x), tt.extract_patches(x, 4))
    assert graph.get_concrete_function().output_shapes.as_list() == [None, 4, 48]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int32"])
def test_extract_patches_keeps_the_dtype(dtype):
    x = tf.cast(images((2, 4, 4, 1)) * 10, dtype)
    assert tt.extract_patches(x, 2).dtype == dtype


@pytest.mark.parametrize(
    "shape, patch_size, error, words",
    [
        ((2, 8, 8, 1), 3, ValueError, "patch_size=3, images with shape (2, 8, 8, 1)"),
        ((2, 8, 6, 1), 4, ValueError, "patch_size=4"),
        ((2, 8, 8, 1), 0, ValueError, "patch_size=0"),
        ((2, 8, 8, 1), 2.0, TypeError, "patch_size=2.0"),
        ((2, 8, 8, 1), True, TypeError, "patch_size=True"),
        ((8, 8, 1), 2, ValueError, "images with shape (8, 8, 1)"),
    ],
)
def test_extract_patches_bad_input_names_the_argument(shape, patch_size, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        tt.extract_patches(tf.zeros(shape), patch_size)


# ------------------------------------------------------------- the layers


@pytest.mark.parametrize("channels, patch_size", [(1, 2), (3, 4)])
def test_patch_embedding_is_a_conv2d_with_stride_equal_to_kernel(channels, patch_size):
    x = images((2, 8, 8, channels))
    embed = tt.PatchEmbedding(patch_size, 16)
    conv = keras.layers.Conv2D(16, patch_size, strides=patch_size)
    theirs = conv(x)  # (batch, rows, columns, d_model)
    embed(x)
    # Conv kernel (p, p, channels, d_model) = projection (p·p·channels, d_model).
    embed.projection.kernel.assign(np.reshape(conv.kernel, (-1, 16)))
    embed.projection.bias.assign(conv.bias)
    ours = embed(x)
    np.testing.assert_allclose(ours, np.reshape(theirs, (2, -1, 16)), atol=1e-6)


def test_patch_embedding_passes_the_layer_checks():
    run_layer_test(
        tt.PatchEmbedding,
        {"patch_size": 2, "d_model": 8},
        [images((2, 4, 6, 3))],
        expected_output_shape=(2, 6, 8),
    )


def test_patch_embedding_rejects_images_its_patches_do_not_tile():
    with pytest.raises(ValueError, match=r"patch_size=3, inputs with shape"):
        tt.PatchEmbedding(3, 8)(tf.zeros((1, 8, 8, 1)))
    with pytest.raises(TypeError, match="d_model='8'"):
        tt.PatchEmbedding(2, "8")


def test_class_token_is_prepended_and_the_same_for_every_example():
    layer = tt.ClassToken(initializer="ones")
    x = images((3, 4, 8))
    out = layer(x)
    assert out.shape == (3, 5, 8)
    np.testing.assert_array_equal(out[:, 1:], x)
    np.testing.assert_array_equal(out[:, 0], np.ones((3, 8)))


def test_class_token_extends_a_keras_mask_with_true():
    ids = tf.constant([[5, 6, 0], [7, 0, 0]])
    x = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    out = tt.ClassToken()(x)
    np.testing.assert_array_equal(
        out._keras_mask, [[True, True, True, False], [True, True, False, False]]
    )


def test_class_token_and_learned_positions_pass_the_layer_checks():
    run_layer_test(
        tt.ClassToken, {}, [images((2, 3, 8))], expected_output_shape=(2, 4, 8)
    )
    run_layer_test(
        tt.LearnedPositionEmbedding,
        {"max_length": 6},
        [images((2, 4, 8))],
        expected_output_shape=(2, 4, 8),
    )


def test_learned_positions_add_one_table_row_per_position():
    layer = tt.LearnedPositionEmbedding(max_length=5)
    out = layer(tf.zeros((2, 3, 4)))
    table = layer.position_embeddings.numpy()
    np.testing.assert_array_equal(out, np.broadcast_to(table[:3], (2, 3, 4)))
    with pytest.raises(ValueError, match="max_length`=5"):
        layer(tf.zeros((1, 6, 4)))


# ------------------------------------------------------------- the model


def vit(**kwargs):
    arguments = dict(
        image_shape=(8, 8, 1),
        patch_size=2,
        num_layers=2,
        d_model=16,
        num_heads=2,
        dff=32,
        num_classes=10,
    )
    return tt.VisionTransformer(**{**arguments, **kwargs})


# KerasHub ViT weight names -> ours (after the model's name).
HUB_TO_OURS = {
    "vit_patching_and_embedding/class_token": "class_token/token",
    "vit_patching_and_embedding/patch_embedding": "patch_embedding/projection",
    "vit_patching_and_embedding/position_embedding/embeddings": (
        "position_embedding/position_embeddings"
    ),
    "vit_encoder/ln": "encoder/final_layer_norm",
    "ln_1": "self_attention_layer_norm",
    "ln_2": "feed_forward_layer_norm",
    "mha": "self_attention",
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
    "mlp/dense_1": "feed_forward/intermediate_dense",
    "mlp/dense_2": "feed_forward/output_dense",
}


def our_name(hub_path):
    name = hub_path
    for block in range(1, 10):
        name = name.replace(
            f"vit_encoder/transformer_block_{block}/",
            f"encoder/encoder_layer_{block - 1}/",
        )
    for theirs, ours in HUB_TO_OURS.items():
        name = name.replace(theirs, ours)
    return name


@pytest.mark.parametrize("channels", [1, 3])
def test_vision_transformer_matches_keras_hub_vit_backbone(channels):
    theirs = keras_hub.models.ViTBackbone(
        image_shape=(8, 8, channels),
        patch_size=2,
        num_layers=2,
        num_heads=4,
        hidden_dim=16,
        mlp_dim=32,
    )
    ours = vit(image_shape=(8, 8, channels), num_heads=4, num_classes=None)
    our_weights = {w.path.split("/", 1)[1]: w for w in ours.weights}
    assert len(our_weights) == len(theirs.weights)
    for weight in theirs.weights:
        target = our_weights.pop(our_name(weight.path))
        # Conv kernel (p, p, c, d) -> projection (p·p·c, d); per-head attention
        # kernels (d, heads, depth) -> (d, heads·depth); class token (1, 1, d).
        target.assign(np.reshape(weight.numpy(), target.shape))
    assert not our_weights, list(our_weights)

    x = images((3, 8, 8, channels))
    expected = theirs(x)
    got = ours(x)
    assert got.shape == expected.shape == (3, 17, 16)
    assert np.abs(np.asarray(got) - np.asarray(expected)).max() <= 1e-5


def test_vision_transformer_head_reads_the_class_token_or_the_mean():
    model = vit()
    x = images((4, 8, 8, 1))
    logits, weights = model(x, return_attention_scores=True)
    assert logits.shape == (4, 10)
    assert len(weights) == 2 and weights[0].shape == (4, 2, 17, 17)
    encoded = model.encode(x)
    np.testing.assert_allclose(logits, model.head(encoded[:, 0]), atol=1e-6)

    mean = vit(pooling="mean")
    logits = mean(x)
    encoded = mean.encode(x)
    assert encoded.shape == (4, 16, 16)  # no class token: 16 patches
    np.testing.assert_allclose(
        logits, mean.head(tf.reduce_mean(encoded, axis=1)), atol=1e-6
    )


def test_vision_transformer_without_head_returns_the_patch_encodings():
    model = vit(num_classes=None)
    out = model(images((2, 8, 8, 1)))
    assert out.shape == (2, 17, 16)
    assert model.compute_output_shape((None, 8, 8, 1)) == (None, 17, 16)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_vision_transformer_keeps_float32_logits_under_mixed_precision(policy):
    model = vit(dtype=policy)
    logits = model(images((2, 8, 8, 1)))
    assert logits.dtype == "float32"
    assert np.isfinite(logits.numpy()).all()
    assert model.encode(images((2, 8, 8, 1))).dtype == policy.split("_")[1]
    assert all(w.dtype == "float32" for w in model.trainable_weights)


@pytest.mark.slow
def test_vision_transformer_trains_and_reloads_in_a_fresh_process(tmp_path):
    model = vit(dropout=0.1)
    x = images((8, 8, 8, 1)).numpy()
    y = np.arange(8) % 10
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    assert all(not np.allclose(b, a) for b, a in zip(before, after, strict=True))

    path = tmp_path / "vit.keras"
    model.save(path)
    expected = model(x, training=False).numpy()
    np.save(tmp_path / "images.npy", x)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import tf_transformer  # registers the serializable classes
        model = keras.models.load_model({str(path)!r})
        x = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "logits.npy")!r}, np.asarray(model(x)))
        print(type(model).__name__, model.get_config()["pooling"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["VisionTransformer", "class_token"]
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), expected)


def test_vision_transformer_config_round_trip_rebuilds_the_same_model():
    model = vit(pooling="mean", dropout=0.2, activation="relu")
    clone = tt.VisionTransformer.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.image_shape == (8, 8, 1)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"patch_size": 3}, ValueError, "patch_size=3, image_shape=(8, 8, 1)"),
        ({"image_shape": (8, 8)}, ValueError, "image_shape=(8, 8)"),
        ({"image_shape": (8, 0, 1)}, ValueError, "image_shape=(8, 0, 1)"),
        ({"num_classes": 0}, ValueError, "num_classes=0"),
        ({"pooling": "max"}, ValueError, "pooling='max'"),
        ({"num_heads": 3}, ValueError, "num_heads=3"),
    ],
)
def test_vision_transformer_bad_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        vit(**kwargs)


def test_vision_transformer_rejects_images_of_another_shape():
    with pytest.raises(ValueError, match=r"images with shape \(2, 16, 16, 1\)"):
        vit()(tf.zeros((2, 16, 16, 1)))
    with pytest.raises(ValueError, match="rank 4"):
        vit()(tf.zeros((2, 8, 8)))
