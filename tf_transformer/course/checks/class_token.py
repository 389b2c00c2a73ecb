"""Check of `ClassToken` (lesson 12): one learned vector in front of every sequence."""

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    alternative,
    bug,
    close,
    exercise,
    library_object,
    to_numpy,
)
from tf_transformer.course.checks._layers import compare, is_local

D_MODEL = 6
# Two sequences of 3 vectors; the second has one padded position.
MASK = np.array([[True, True, True], [True, True, False]])


def _x(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _token_of(layer, what):
    """The layer's one weight, which must be a (d_model,) weight named `token`."""
    weights = list(layer.weights)
    names = [w.path.rsplit("/", 1)[-1] for w in weights]
    if len(weights) != 1 or names != ["token"]:
        raise Failure(
            f"{what} has the weights {names or 'none'} after build, expected one "
            "weight named `token` — create it in build with self.add_weight("
            'name="token", shape=(d_model,), initializer=self.initializer)'
        )
    token = weights[0]
    if tuple(token.shape) != (D_MODEL,):
        raise Failure(
            f"{what}: `token` has shape {tuple(token.shape)}, expected "
            f"({D_MODEL},) — one d_model vector, shared by every example (d_model "
            "is input_shape[-1])"
        )
    return token


def _call(ctx, layer, x, what):
    """`layer(x)`; a crash that a batch of one avoids gets the tile hint."""
    try:
        return ctx.call(layer, x, what=what)
    except StudentError as error:
        if x.shape[0] > 1 and _works_for_one(layer, x):
            raise Failure(
                f"{error} — it works for a batch of 1 only: the token is "
                "(1, 1, d_model) and must be repeated for every example, "
                "tf.tile(token, (batch, 1, 1)) with batch = tf.shape(inputs)[0]"
            ) from None
        raise


def _works_for_one(layer, x):
    try:
        layer(x[:1])
    except Exception:  # noqa: BLE001 - a diagnosis only
        return False
    return True


def _built(ctx, student_cls, what, *args, **kwargs):
    layer = ctx.call(student_cls, *args, what=what, **kwargs)
    _call(ctx, layer, _x(0, (2, 3, D_MODEL)), f"calling {what} for the first time")
    return layer, _token_of(layer, what)


def _initial_state(ctx, student_cls):
    layer, token = _built(ctx, student_cls, "ClassToken()")
    values = np.asarray(token)
    if np.abs(values).max() > 0:
        raise Failure(
            f"ClassToken(): `token` starts at values up to {np.abs(values).max():.3g}, "
            'expected zeros — the initializer argument defaults to "zeros" (the '
            "position embedding added next tells the token apart)"
        )
    trainable = [w.path for w in layer.trainable_weights]
    if token.path not in trainable:
        raise Failure(
            "ClassToken(): `token` is not trainable — it is *learned*: training "
            "must be able to change it (no trainable=False)"
        )
    ones, ones_token = _built(
        ctx, student_cls, 'ClassToken(initializer="ones")', "ones"
    )
    if not close(np.asarray(ones_token), np.ones(D_MODEL)):
        raise Failure(
            'ClassToken(initializer="ones"): `token` does not start at ones — '
            "create the weight with initializer=self.initializer, the argument"
        )
    ctx.ok(
        "one trainable weight `token` (d_model,), zeros by default, initializer used"
    )
    return layer, ones


def _set_token(layer, seed):
    values = np.random.default_rng(seed).normal(size=(D_MODEL,)).astype("float32")
    _token_of(layer, "ClassToken").assign(values)
    return values


def _expected(token, x):
    x = np.asarray(x)
    tokens = np.broadcast_to(token, (x.shape[0], 1, D_MODEL))
    return np.concatenate([tokens, x], axis=1)


def _outputs(ctx, layer):
    token = _set_token(layer, 1)
    for shape in ((2, 3, D_MODEL), (3, 1, D_MODEL), (1, 4, D_MODEL)):
        x = _x(2, shape)
        what = f"ClassToken()(x of shape {shape})"
        actual = to_numpy(_call(ctx, layer, x, what), what)
        expected = _expected(token, x)
        if actual.shape == (shape[0], shape[1], D_MODEL):
            raise Failure(
                f"{what} has shape {actual.shape}, expected {expected.shape} — the "
                "token is not prepended: the output is one position longer, the "
                "token in front (tf.concat on axis 1), not added to the vectors"
            )
        if actual.shape == expected.shape and not close(actual, expected, atol=1e-6):
            appended = np.concatenate([np.asarray(x), expected[:, :1]], axis=1)
            if close(actual, appended, atol=1e-6):
                raise Failure(
                    f"{what}: the token is appended at the end — prepend it: "
                    "position 0 is the class token, the sequence follows"
                )
            compare(
                actual,
                expected,
                what,
                "position 0 must hold the token, positions 1… the input unchanged",
            )
        compare(actual, expected, what, "")
    ctx.ok("prepends the same token to every example: (batch, 1 + length, d_model)")


def _mask(ctx, layer):
    x = _x(3, (2, 3, D_MODEL))
    what = "ClassToken().compute_mask(x, mask)"
    found = ctx.call(layer.compute_mask, x, tf.constant(MASK), what=what)
    if found is None:
        raise Failure(
            f"{what} returned None — the Keras mask is lost: return the input's "
            "mask with True prepended for the class token"
        )
    found = to_numpy(found, what).astype(bool)
    expected = np.concatenate([np.ones((2, 1), bool), MASK], axis=1)
    if found.shape == MASK.shape:
        raise Failure(
            f"{what} has shape {found.shape}, expected {expected.shape} — the mask "
            "is not extended: one more position, True for the class token"
        )
    if found.shape != expected.shape:
        raise Failure(f"{what} has shape {found.shape}, expected {expected.shape}")
    if np.array_equal(found[:, 1:], MASK) and not found[:, 0].any():
        raise Failure(
            f"{what}: the class token's position is False — prepend True: every "
            "other position may attend to the class token (and it is never padding)"
        )
    if np.array_equal(found[:, :-1], MASK) and found[:, -1].all():
        raise Failure(
            f"{what}: True is appended at the end — prepend it, where the token is"
        )
    if not np.array_equal(found, expected):
        raise Failure(
            f"{what} gives {found.astype(int).tolist()}, expected "
            f"{expected.astype(int).tolist()} — True for the token, then the mask"
        )
    none = ctx.call(layer.compute_mask, x, None, what="compute_mask(x, None)")
    if none is not None:
        raise Failure(
            "ClassToken().compute_mask(x, None) returned a mask — without an input "
            "mask there is none to extend: return None"
        )
    ctx.ok("a Keras mask gets True prepended; no mask stays no mask")


def _gradient(ctx, layer):
    x = _x(4, (2, 3, D_MODEL))
    token = _token_of(layer, "ClassToken")
    with tf.GradientTape() as tape:
        out = ctx.call(layer, x, what="ClassToken()(x)")
        loss = tf.reduce_sum(out[:, 0] * tf.range(1.0, D_MODEL + 1.0))
    gradient = tape.gradient(loss, token)
    if gradient is None or not np.any(np.asarray(tf.convert_to_tensor(gradient))):
        raise Failure(
            "ClassToken(): no gradient reaches `token`, so training would never "
            "change it — build the output from self.token with TensorFlow ops "
            "(no NumPy copy, no tf.stop_gradient)"
        )
    ctx.ok("`token` receives gradients: it is learned")


def _graph(ctx, layer):
    graph = tf.function(
        lambda inputs: layer(inputs),
        input_signature=[tf.TensorSpec((None, None, D_MODEL), tf.float32)],
    )
    x = _x(5, (3, 2, D_MODEL))
    what = "ClassToken() inside tf.function with unknown batch and length"
    try:
        actual = ctx.call(graph, x, what=what)
    except StudentError as error:
        raise Failure(
            f"{str(error)[:200]} — read the batch size with tf.shape(inputs)[0]: "
            "inside tf.function inputs.shape[0] is None"
        ) from None
    compare(
        actual,
        _expected(np.asarray(_token_of(layer, "ClassToken")), x),
        what,
        "read the batch size with tf.shape(inputs)[0], not inputs.shape[0]",
    )
    ctx.ok("works inside tf.function with unknown batch and length")


def _config(ctx, student_cls, ones):
    what = 'ClassToken(initializer="ones").get_config()'
    config = ctx.call(ones.get_config, what=what)
    made = "ClassToken.from_config(its config)"
    clone = ctx.call(student_cls.from_config, config, what=made)
    ctx.call(clone, _x(0, (2, 3, D_MODEL)), what=f"calling the layer made by {made}")
    token = np.asarray(_token_of(clone, made))
    if not close(token, np.ones(D_MODEL)):
        raise Failure(
            f"{made} starts its token at {token.round(3).tolist()}, not at ones — "
            "get_config misses the initializer: add "
            "keras.initializers.serialize(self.initializer) to the base config"
        )
    ctx.ok("get_config / from_config round trip, the initializer included")


@exercise(
    "class_token",
    lesson=12,
    points=1,
    kind="class",
    reference="ClassToken",
    methods=("build", "call", "compute_mask", "get_config"),
)
def check_class_token(ctx, student_cls, reference_cls):
    layer, ones = _initial_state(ctx, student_cls)
    _outputs(ctx, layer)
    _mask(ctx, layer)
    if is_local(layer):
        _gradient(ctx, layer)
    _graph(ctx, layer)
    _config(ctx, student_cls, ones)


# ------------------------------------------------- catalogue of typical bugs


def _token_with(**methods):
    return type("BuggyClassToken", (library_object("ClassToken"),), methods)


def _build_with(name="token", initializer=None, trainable=True, shape=None):
    def build(self, input_shape):
        self.token = self.add_weight(
            name=name,
            shape=shape or (input_shape[-1],),
            initializer=initializer or self.initializer,
            trainable=trainable,
        )
        self.built = True

    return build


def _call_with(order="prepend", tile=True):
    def call(self, inputs):
        token = tf.cast(self.token, inputs.dtype)[tf.newaxis, tf.newaxis, :]
        if tile:
            token = tf.tile(token, (tf.shape(inputs)[0], 1, 1))
        parts = [token, inputs] if order == "prepend" else [inputs, token]
        return tf.concat(parts, axis=1)

    return call


@bug("class_token", "appended at the end")
def class_token_appended():
    """the token concatenated after the sequence"""
    return _token_with(call=_call_with(order="append"))


@bug("class_token", "tf.tile")
def class_token_not_tiled():
    """the (1, 1, d_model) token concatenated without repeating it per example"""
    return _token_with(call=_call_with(tile=False))


@bug("class_token", "not prepended")
def class_token_added():
    """the token added to every vector instead of prepended"""

    def call(self, inputs):
        return inputs + tf.cast(self.token, inputs.dtype)

    return _token_with(call=call)


@bug("class_token", "expected zeros")
def class_token_random_default():
    """the token initialised randomly whatever the argument says"""
    return _token_with(build=_build_with(initializer="random_normal"))


@bug("class_token", "initializer=self.initializer")
def class_token_zeros_always():
    """the initializer argument ignored (zeros always)"""
    return _token_with(build=_build_with(initializer="zeros"))


@bug("class_token", "not trainable")
def class_token_frozen():
    """the token created with trainable=False"""
    return _token_with(build=_build_with(trainable=False))


@bug("class_token", "one weight named `token`")
def class_token_wrong_name():
    """the weight named `cls` (checkpoints and the ViT's weight map look for `token`)"""
    return _token_with(build=_build_with(name="cls"))


@bug("class_token", "one d_model vector")
def class_token_per_example_shape():
    """the token created as (1, 1, d_model) — not one d_model vector"""

    def call(self, inputs):
        token = tf.cast(self.token, inputs.dtype)
        return tf.concat([tf.tile(token, (tf.shape(inputs)[0], 1, 1)), inputs], 1)

    def build(self, input_shape):
        _build_with(shape=(1, 1, input_shape[-1]))(self, input_shape)

    return _token_with(build=build, call=call)


@bug("class_token", "returned None")
def class_token_mask_dropped():
    """compute_mask returns None: the padding mask is lost"""
    return _token_with(compute_mask=lambda self, inputs, mask=None: None)


@bug("class_token", "not extended")
def class_token_mask_unchanged():
    """compute_mask returns the input's mask unchanged (one position short)"""
    return _token_with(compute_mask=lambda self, inputs, mask=None: mask)


@bug("class_token", "position is False")
def class_token_mask_false():
    """False prepended to the mask"""

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return tf.concat([tf.zeros_like(mask[:, :1]), mask], axis=1)

    return _token_with(compute_mask=compute_mask)


@bug("class_token", "True is appended")
def class_token_mask_appended():
    """True appended to the mask instead of prepended"""

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return tf.concat([mask, tf.ones_like(mask[:, :1])], axis=1)

    return _token_with(compute_mask=compute_mask)


@bug("class_token", "no gradient reaches")
def class_token_stop_gradient():
    """the token read through tf.stop_gradient"""

    def call(self, inputs):
        token = tf.stop_gradient(tf.cast(self.token, inputs.dtype))
        token = tf.tile(token[tf.newaxis, tf.newaxis], (tf.shape(inputs)[0], 1, 1))
        return tf.concat([token, inputs], axis=1)

    return _token_with(call=call)


@bug("class_token", "raised")
def class_token_static_batch():
    """tiles by the static batch size inputs.shape[0] (None in a tf.function)"""

    def call(self, inputs):
        token = tf.cast(self.token, inputs.dtype)[tf.newaxis, tf.newaxis, :]
        token = tf.tile(token, (inputs.shape[0], 1, 1))
        return tf.concat([token, inputs], axis=1)

    return _token_with(call=call)


@bug("class_token", "get_config misses the initializer")
def class_token_config_without_initializer():
    """get_config returns the base config only"""
    return _token_with(get_config=lambda self: keras.layers.Layer.get_config(self))


@alternative("class_token")
def class_token_broadcast_to():
    """tf.broadcast_to instead of tf.tile, keras.ops for the mask"""

    def call(self, inputs):
        batch = tf.shape(inputs)[0]
        token = tf.broadcast_to(
            tf.cast(self.token, inputs.dtype), (batch, 1, tf.shape(inputs)[-1])
        )
        return tf.concat([token, inputs], axis=1)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return keras.ops.pad(mask, [[0, 0], [1, 0]], constant_values=True)

    return _token_with(call=call, compute_mask=compute_mask)
