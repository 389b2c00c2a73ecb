"""Check of `FeedForward` (lesson 6)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    exercise,
    library_object,
    to_numpy,
)
from tf_transformer.course.checks._layers import (
    DROPOUT_AT_INFERENCE,
    compare,
    dropout_behaviour,
    gradient_bugs,
    gradients_match,
    inference_is_random,
    round_trip,
    twins,
)
from tf_transformer.course.grading.wire import Slot


def _inputs(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


@exercise(
    "feed_forward",
    lesson=6,
    points=1,
    kind="class",
    reference="FeedForward",
    methods=("build", "call"),
)
def check_feed_forward(ctx, student_cls, reference_cls):
    x = _inputs(0, (2, 5, 8))
    _check_sublayers(ctx, student_cls)
    for kwargs in ({"dropout": 0.1}, {"dropout": 0.0, "activation": "gelu"}):
        layer, reference, what = twins(
            ctx, student_cls, reference_cls, lambda layer: layer(x), 8, 16, **kwargs
        )
        for seed, shape in ((1, (2, 5, 8)), (2, (1, 3, 8))):
            inputs = _inputs(seed, shape)
            call = f"{what}(x of shape {shape}, training=False)"
            actual = to_numpy(ctx.call(layer, inputs, training=False, what=call), call)
            expected = np.asarray(reference(inputs, training=False))
            if actual.shape == expected.shape and not close(
                actual, expected, atol=1e-4
            ):
                hint = (
                    "FFN(x) = Dense(d_model)(activation(Dense(dff)(x))), then dropout"
                )
                if inference_is_random(
                    lambda layer=layer, inputs=inputs: layer(inputs, training=False)
                ):
                    hint = DROPOUT_AT_INFERENCE
                elif close(actual, expected + np.asarray(inputs), atol=1e-4):
                    hint = (
                        "the input is added to the output — the residual belongs to "
                        "the encoder layer"
                    )
                elif actual.min() >= 0 > expected.min():
                    hint = (
                        "the output is never negative — no activation after the "
                        "second Dense"
                    )
                compare(actual, expected, call, hint)
            compare(actual, expected, call, "")
    ctx.ok("matches the reference (relu and gelu, two input shapes)")

    layer, reference, what = twins(
        ctx, student_cls, reference_cls, lambda layer: layer(x), 8, 32, dropout=0.5
    )
    inference = [
        to_numpy(ctx.call(layer, x, training=False, what=what), what) for _ in range(2)
    ]
    training = [
        to_numpy(ctx.call(layer, x, training=True, what=what), what) for _ in range(2)
    ]
    dropout_behaviour(ctx, inference, training, what)
    dropped = float(np.mean(training[0] == 0))
    if dropped < 0.2:
        raise Failure(
            f"{what} with training=True: only {dropped:.0%} of the outputs are zero — "
            "apply the dropout to the output of the second Dense"
        )

    graph = tf.function(
        lambda inputs: layer(inputs, training=False),
        input_signature=[tf.TensorSpec((None, None, 8), tf.float32)],
    )
    call = f"{what} inside tf.function with unknown batch and length"
    compare(
        ctx.call(graph, x, what=call),
        reference(x, training=False),
        call,
        "use tf.shape",
    )
    ctx.ok("works inside tf.function with unknown batch and length")
    gradients_match(
        ctx,
        layer,
        reference,
        ((Slot(0),), {"training": False}),
        [x],
        f"{what} on x (2, 5, 8)",
    )
    round_trip(ctx, student_cls, layer, lambda layer: layer(x, training=False))


def _check_sublayers(ctx, student_cls):
    """The sublayers `build` makes, before any output is compared."""
    what = f"{student_cls.__name__}(8, 16).build((2, 5, 8))"
    layer = ctx.call(student_cls, 8, 16, what=f"{student_cls.__name__}(8, 16)")
    ctx.call(layer.build, (2, 5, 8), what=what)
    for name in ("intermediate_dense", "output_dense", "dropout_layer"):
        if getattr(layer, name, None) is None:
            hint = (
                "start build with super().build(input_shape): it checks the input "
                "and creates the dropout"
                if name == "dropout_layer"
                else f"create self.{name} with self.dense(...)"
            )
            raise Failure(f"after {what} the layer has no `{name}` — {hint}")
    for name, expected, built_with in (
        ("intermediate_dense", (8, 16), "the input's shape (..., d_model)"),
        ("output_dense", (16, 8), "the hidden shape (..., dff)"),
    ):
        kernel = getattr(getattr(layer, name), "kernel", None)
        shape = None if kernel is None else tuple(kernel.shape)
        if shape != expected:
            raise Failure(
                f"after {what}, {name} has a kernel of shape {shape}, expected "
                f"{expected} (d_model = 8, dff = 16) — build it right away with "
                f"{built_with}"
            )


# ------------------------------------------------- catalogue of typical bugs


def _override(name, call):
    base = library_object(name)
    return type(f"Buggy{name}", (base,), {"call": call})


@bug("feed_forward", "dropout is active at inference")
def ffn_dropout_always():
    """dropout with training=True always"""

    def call(self, inputs, training=None):
        x = self.output_dense(self.intermediate_dense(inputs))
        return self.dropout_layer(x, training=True)

    return _override("FeedForward", call)


@bug("feed_forward", "is dropout applied")
def ffn_no_dropout():
    """no dropout"""
    return _override(
        "FeedForward",
        lambda self, inputs, training=None: self.output_dense(
            self.intermediate_dense(inputs)
        ),
    )


@bug("feed_forward", "residual belongs to the encoder layer")
def ffn_residual():
    """adds the input (residual inside the FFN)"""

    def call(self, inputs, training=None):
        x = self.output_dense(self.intermediate_dense(inputs))
        return inputs + self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


@bug("feed_forward", "no activation after the second Dense")
def ffn_relu_output():
    """relu on the output too"""

    def call(self, inputs, training=None):
        x = tf.nn.relu(self.output_dense(self.intermediate_dense(inputs)))
        return self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


@bug("feed_forward", "apply the dropout to the output of the second Dense")
def ffn_dropout_inside():
    """dropout between the two Dense layers"""

    def call(self, inputs, training=None):
        x = self.dropout_layer(self.intermediate_dense(inputs), training=training)
        return self.output_dense(x)

    return _override("FeedForward", call)


@bug("feed_forward", "raised")
def ffn_static_batch():
    """reads the static batch size (fails with an unknown batch)"""

    def call(self, inputs, training=None):
        batch, length = inputs.shape[0], inputs.shape[1]
        x = tf.reshape(inputs, (batch * length, self.d_model))
        x = self.output_dense(self.intermediate_dense(x))
        x = tf.reshape(x, (batch, length, self.d_model))
        return self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


def _override_build(build):
    base = library_object("FeedForward")
    return type("BuggyFeedForward", (base,), {"build": build})


@bug("feed_forward", "start build with super().build(input_shape)")
def ffn_no_super_build():
    """build without super().build (no dropout layer)"""

    def build(self, input_shape):
        self.intermediate_dense = self.dense(
            self.dff, "intermediate_dense", activation=self.activation
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = self.dense(self.d_model, "output_dense")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.dff,))
        self.built = True

    return _override_build(build)


@bug("feed_forward", "build it right away with the hidden shape")
def ffn_output_built_on_input_shape():
    """builds the second Dense with the input's shape"""

    def build(self, input_shape):
        super(library_object("FeedForward"), self).build(input_shape)
        self.intermediate_dense = self.dense(
            self.dff, "intermediate_dense", activation=self.activation
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = self.dense(self.d_model, "output_dense")
        self.output_dense.build(input_shape)

    return _override_build(build)


@bug("feed_forward", "no activation after the second Dense")
def ffn_activation_on_the_output():
    """the activation on the second Dense instead of the first"""

    def build(self, input_shape):
        super(library_object("FeedForward"), self).build(input_shape)
        self.intermediate_dense = self.dense(self.dff, "intermediate_dense")
        self.intermediate_dense.build(input_shape)
        self.output_dense = self.dense(
            self.d_model, "output_dense", activation=self.activation
        )
        self.output_dense.build(tuple(input_shape[:-1]) + (self.dff,))

    return _override_build(build)


gradient_bugs("feed_forward", "FeedForward", "intermediate_dense")


@alternative("feed_forward")
def ffn_plumbing_by_hand():
    """build written out in full, as answers before FeedForwardBase.dense did:
    the initializers cloned, the dtype policy, the names and the dropout by hand"""
    import keras

    from tf_transformer.layers.dropout import Dropout
    from tf_transformer.layers.initializers import clone_initializer

    def build(self, input_shape):
        def dense(units, name, activation=None):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=name,
            )

        self.intermediate_dense = dense(self.dff, "intermediate_dense", self.activation)
        self.intermediate_dense.build(input_shape)
        self.output_dense = dense(self.d_model, "output_dense")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.dff,))
        self.dropout_layer = Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    return _override_build(build)
