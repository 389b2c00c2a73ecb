"""Check of `LoRADense` (lesson 15): a frozen Dense plus A·B·alpha/rank."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

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
    compare,
    round_trip,
    student_gradients,
)
from tf_transformer.course.grading.wire import Slot

INPUT_DIM, UNITS, RANK, ALPHA = 8, 6, 2, 6.0  # scale alpha / rank = 3


def _dense(units, activation, use_bias=True, seed=0, input_dim=INPUT_DIM):
    """A built Dense with fixed, non-trivial weights (the "pretrained" layer)."""
    dense = keras.layers.Dense(units, activation=activation, use_bias=use_bias)
    dense.build((None, input_dim))
    rng = np.random.default_rng(seed)
    dense.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in dense.weights]
    )
    return dense


def _x(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _describe(units, activation, use_bias, rank=RANK, alpha=ALPHA):
    extra = "" if use_bias else ", use_bias=False"
    return (
        f"LoRADense(Dense({units}, activation={activation!r}{extra}), "
        f"rank={rank}, alpha={alpha:g})"
    )


def _weight(ctx, layer, name, shape, what):
    weight = getattr(layer, name, None)
    if weight is None:
        raise Failure(
            f"{what} has no `{name}` after build — create self.lora_a "
            f"(input_dim, rank) and self.lora_b (rank, units) with self.add_weight"
        )
    if tuple(weight.shape) != shape:
        raise Failure(
            f"{what}: `{name}` has shape {tuple(weight.shape)}, expected {shape} — "
            "lora_a is (input_dim, rank) and lora_b (rank, units), so that "
            "x @ lora_a @ lora_b goes input_dim → rank → units"
        )
    return weight


def _made(ctx, student_cls, units, activation, use_bias=True):
    """The student's layer on one Dense, and an equal Dense kept apart (the
    expected values never depend on what the student's code does to its own)."""
    what = _describe(units, activation, use_bias)
    dense = _dense(units, activation, use_bias, seed=units)
    layer = ctx.call(student_cls, dense, RANK, ALPHA, what=what)
    ctx.call(layer, _x(0, (2, INPUT_DIM)), what=f"calling {what} for the first time")
    return layer, _dense(units, activation, use_bias, seed=units), what


def _start_state(ctx, layer, dense, what):
    a = _weight(ctx, layer, "lora_a", (INPUT_DIM, RANK), what)
    b = _weight(ctx, layer, "lora_b", (RANK, UNITS), what)
    b_values = np.asarray(b)
    if np.abs(b_values).max() > 0:
        raise Failure(
            f"{what}: lora_b starts with values up to {np.abs(b_values).max():.3g}, "
            "expected zeros — with B = 0 the update A·B is 0 and training starts "
            "from the pretrained layer itself"
        )
    if np.abs(np.asarray(a)).max() == 0:
        raise Failure(
            f"{what}: lora_a starts at zeros too — with A = 0 and B = 0 every "
            "gradient of A and B is 0 and nothing ever learns; initialise A "
            "randomly (self.a_initializer)"
        )
    # Compared by path: in the grader the weights are handles on another process.
    trainable = {w.path for w in layer.trainable_weights}
    frozen = [w.path for w in layer.dense.weights if w.path in trainable]
    if frozen:
        raise Failure(
            f"{what}: the wrapped Dense's weights {frozen} are trainable — freeze "
            "the pretrained weights (self.dense.trainable = False); only lora_a "
            "and lora_b learn"
        )
    if trainable != {a.path, b.path}:
        raise Failure(
            f"{what}: the trainable weights are {sorted(trainable)}, expected "
            "lora_a and lora_b"
        )
    x = _x(1, (3, INPUT_DIM))
    compare(
        ctx.call(layer, x, what=what),
        dense(x),
        f"{what} at the start (B = 0)",
        "with B = 0 the layer must compute exactly what the Dense computes: "
        "x W + b, then the Dense's activation",
    )
    ctx.ok("starts as the frozen Dense: B = 0, only A and B trainable")
    return a, b


def _candidates(dense, x, a, b):
    """What common wrong formulas give, next to their hints."""
    kernel = np.asarray(dense.kernel)
    bias = np.asarray(dense.bias) if dense.use_bias else 0.0
    base = x @ kernel + bias
    update = x @ a @ b

    def act(z):
        return np.asarray(dense.activation(tf.constant(z, tf.float32)))

    scale = ALPHA / RANK
    return [
        (
            act(base + update * ALPHA),
            "the update is scaled by alpha, expected alpha / rank (dividing by the "
            "rank lets alpha stay put when the rank changes)",
        ),
        (
            act(base + update),
            "the update is not scaled: multiply x·A·B by alpha / rank",
        ),
        (
            act(base + update * RANK / ALPHA),
            "the update is scaled by rank / alpha, expected alpha / rank",
        ),
        (
            act(base) + update * scale,
            "the activation is applied before the update is added — add x·A·B·"
            "alpha/rank to x W + b first, then apply the Dense's activation",
        ),
        (
            act(x @ kernel + update * scale),
            "the Dense's bias is missing: y = activation(x W + b + x A B · alpha/rank)",
        ),
    ]


def _adapted(ctx, layer, dense, what):
    """Give A and B non-zero values, as after training, and compare."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(INPUT_DIM, RANK)).astype("float32")
    b = rng.normal(size=(RANK, UNITS)).astype("float32") * 0.5
    layer.lora_a.assign(a)
    layer.lora_b.assign(b)
    x = _x(2, (2, 5, INPUT_DIM))
    call = f"{what} with non-zero A and B on x of shape (2, 5, {INPUT_DIM})"
    actual = to_numpy(ctx.call(layer, x, what=call), call)
    scale = ALPHA / RANK
    base = np.asarray(x) @ np.asarray(dense.kernel)
    if dense.use_bias:
        base = base + np.asarray(dense.bias)
    pre = base + np.asarray(x) @ a @ b * scale
    expected = np.asarray(dense.activation(tf.constant(pre, tf.float32)))
    if actual.shape == expected.shape and not close(actual, expected, atol=1e-4):
        hint = "y = activation(x W + b + x A B · alpha / rank)"
        for candidate, candidate_hint in _candidates(dense, np.asarray(x), a, b):
            if close(actual, candidate, atol=1e-4):
                hint = candidate_hint
                break
        compare(actual, expected, call, hint)
    compare(actual, expected, call, "")
    return x, expected


def _gradients(ctx, layer, x, what):
    """A and B receive gradients, computed where the layer lives (in the
    grader, the answers' process: `student_gradients`)."""
    _, weights = student_gradients(ctx, layer, ((Slot(0),), {}), [x], what)
    by_path = {path: grad for path, _, grad in weights if isinstance(path, str)}
    for weight in (layer.lora_a, layer.lora_b):
        grad = by_path.get(weight.path)
        if grad is None or not np.any(np.asarray(grad)):
            raise Failure(
                f"{what}: `{weight.path}` gets no gradient — compute the update "
                "from self.lora_a and self.lora_b inside call (with TensorFlow ops)"
            )
    ctx.ok("A and B receive gradients, the Dense's weights do not")


def _graph(ctx, layer, x, what):
    """Inside tf.function, and reading A and B when it runs, not when traced."""
    graph = tf.function(
        lambda inputs: layer(inputs),
        input_signature=[tf.TensorSpec((None, None, INPUT_DIM), tf.float32)],
    )
    call = f"{what} inside tf.function with unknown batch and length"
    compare(ctx.call(graph, x, what=call), layer(x), call, "use TensorFlow ops")
    layer.lora_b.assign(np.asarray(layer.lora_b) * 2.0)
    compare(
        ctx.call(graph, x, what=call),
        layer(x),
        f"{call}, after lora_b changed",
        "the compiled layer still uses the old B — read self.lora_a and "
        "self.lora_b with TensorFlow ops inside call, not NumPy copies",
    )
    ctx.ok("works inside tf.function with unknown batch and length")


def _type_name(value):
    if isinstance(value, keras.layers.Layer):
        return type(value).__name__
    return getattr(value, "__name__", type(value).__name__)  # a grader handle


def _merged(ctx, layer, dense, x, what, square=False):
    before = to_numpy(ctx.call(layer, x, what=what), what)
    merged = ctx.call(layer.merge, what=f"{what}.merge()")
    if _type_name(merged) != "Dense":
        raise Failure(
            f"{what}.merge() returned {_type_name(merged)}, expected a plain "
            "keras.layers.Dense (build a new one with the wrapped Dense's config)"
        )
    after = to_numpy(ctx.call(layer, x, what=what), what)
    if not close(before, after, atol=1e-5):
        raise Failure(
            f"{what}: after merge() the layer computes something else — merge() "
            "changed the wrapped Dense in place, so the update is now added twice; "
            "build a new Dense and leave self.dense as it is"
        )
    call = f"{what}.merge()(x)"
    actual = to_numpy(ctx.call(merged, x, what=call), call)
    if actual.shape == before.shape and not close(actual, before, atol=1e-4):
        a, b = np.asarray(layer.lora_a), np.asarray(layer.lora_b)
        kernel, update = np.asarray(dense.kernel), a @ b
        got = np.asarray(merged.kernel) if merged.built else None
        scale = ALPHA / RANK
        hint = "the merged kernel is W + A B · alpha / rank, the bias b unchanged"
        if got is not None and got.shape == kernel.shape:
            if close(got, kernel + update * scale, atol=1e-4):
                hint = (
                    "the merged kernel is right but the outputs differ — keep the "
                    "Dense's activation and bias (make it from self.dense.get_config())"
                )
            elif square and close(got, kernel + update.T * scale, atol=1e-4):
                hint = (
                    "the merged kernel adds (A B) transposed — A B is already "
                    "(input_dim, units), the kernel's shape"
                )
            elif close(got, kernel, atol=1e-6):
                hint = "the merged kernel is W alone — add A B · alpha / rank"
            elif close(got, kernel + update * ALPHA, atol=1e-4):
                hint = "the merged kernel adds A B · alpha, expected A B · alpha / rank"
        compare(actual, before, call, hint)
    compare(actual, before, call, "")
    return merged


@exercise(
    "lora_dense",
    lesson=15,
    points=2,
    kind="class",
    reference="LoRADense",
    methods=("build", "call", "merge"),
)
def check_lora_dense(ctx, student_cls, reference_cls):
    layer, dense, what = _made(ctx, student_cls, UNITS, "gelu")
    _start_state(ctx, layer, dense, what)
    x, _ = _adapted(ctx, layer, dense, what)
    plain, plain_dense, plain_what = _made(ctx, student_cls, UNITS, None, False)
    _adapted(ctx, plain, plain_dense, plain_what)
    ctx.ok(
        "y = activation(x W + b + x A B · alpha / rank), with and without "
        "activation and bias"
    )
    _gradients(ctx, layer, x, what)
    _graph(ctx, layer, x, what)

    # A square layer first: there a transposed A B still fits the kernel, and
    # the check can say so instead of reporting a shape error.
    square, square_dense, square_what = _made(ctx, student_cls, INPUT_DIM, "relu")
    _adapted_square(ctx, square)
    _merged(ctx, square, square_dense, x, square_what, square=True)
    _merged(ctx, layer, dense, x, what)
    ctx.ok("merge() gives one plain Dense with the same outputs")
    round_trip(ctx, student_cls, layer, lambda clone: clone(x))


def _adapted_square(ctx, layer):
    rng = np.random.default_rng(4)
    layer.lora_a.assign(rng.normal(size=layer.lora_a.shape).astype("float32"))
    layer.lora_b.assign(rng.normal(size=layer.lora_b.shape).astype("float32"))


# ------------------------------------------------- catalogue of typical bugs


def _lora_with(**methods):
    return type("BuggyLoRADense", (library_object("LoRADense"),), methods)


def _build_with(b_initializer="zeros", a_initializer=None, freeze=True, a_shape=None):
    def build(self, input_shape):
        if freeze:
            self.dense.trainable = False
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=a_shape or (self.input_dim, self.rank),
            initializer=a_initializer or self.a_initializer,
        )
        self.lora_b = self.add_weight(
            name="lora_b", shape=(self.rank, self.units), initializer=b_initializer
        )
        self.built = True

    return build


def _call_with(scale=lambda layer: layer.alpha / layer.rank, activation_first=False):
    def call(self, inputs):
        outputs = ops.matmul(inputs, self.dense.kernel)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        update = ops.matmul(ops.matmul(inputs, self.lora_a), self.lora_b) * scale(self)
        if activation_first:
            return self.dense.activation(outputs) + update
        return self.dense.activation(outputs + update)

    return call


@bug("lora_dense", "expected zeros")
def lora_random_b():
    """B initialised randomly (the layer no longer starts as the base model)"""
    return _lora_with(build=_build_with(b_initializer="glorot_uniform"))


@bug("lora_dense", "nothing ever learns")
def lora_zero_a():
    """A and B both initialised to zeros"""
    return _lora_with(build=_build_with(a_initializer="zeros"))


@bug("lora_dense", "freeze the pretrained weights")
def lora_trainable_base():
    """the wrapped Dense left trainable"""
    return _lora_with(build=_build_with(freeze=False))


@bug("lora_dense", "(input_dim, rank)")
def lora_a_transposed():
    """lora_a created as (rank, input_dim) and transposed in call"""

    def build(self, input_shape):
        _build_with(a_shape=(self.rank, self.input_dim))(self, input_shape)

    def call(self, inputs):
        a = ops.transpose(self.lora_a)
        update = ops.matmul(ops.matmul(inputs, a), self.lora_b)
        outputs = ops.matmul(inputs, self.dense.kernel) + self.dense.bias
        return self.dense.activation(outputs + update * (self.alpha / self.rank))

    return _lora_with(build=build, call=call)


@bug("lora_dense", "scaled by alpha, expected alpha / rank")
def lora_scale_alpha():
    """the update scaled by alpha instead of alpha / rank"""
    return _lora_with(call=_call_with(scale=lambda layer: layer.alpha))


@bug("lora_dense", "not scaled")
def lora_no_scale():
    """the scale forgotten"""
    return _lora_with(call=_call_with(scale=lambda layer: 1.0))


@bug("lora_dense", "scaled by rank / alpha")
def lora_scale_inverted():
    """the update scaled by rank / alpha"""
    return _lora_with(call=_call_with(scale=lambda layer: layer.rank / layer.alpha))


@bug("lora_dense", "activation is applied before the update")
def lora_activation_first():
    """the Dense's activation applied before the update is added"""
    return _lora_with(call=_call_with(activation_first=True))


@bug("lora_dense", "raised")
def lora_bias_always():
    """adds self.dense.bias even when the Dense has no bias"""

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.dense.kernel) + self.dense.bias
        update = ops.matmul(ops.matmul(inputs, self.lora_a), self.lora_b)
        return self.dense.activation(outputs + update * (self.alpha / self.rank))

    return _lora_with(call=call)


@bug("lora_dense", "gets no gradient")
def lora_numpy_update():
    """computes the update from NumPy copies of A and B (no gradient)"""

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.dense.kernel)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        product = np.asarray(self.lora_a) @ np.asarray(self.lora_b)
        update = ops.matmul(inputs, product) * (self.alpha / self.rank)
        return self.dense.activation(outputs + update)

    return _lora_with(call=call)


def _merge_with(
    transpose=False,
    scale=lambda layer: layer.alpha / layer.rank,
    in_place=False,
    keep_config=True,
):
    def merge(self):
        update = ops.matmul(self.lora_a, self.lora_b) * scale(self)
        if transpose:
            update = ops.transpose(update)
        if in_place:
            self.dense.kernel.assign(self.dense.kernel + update)
            return self.dense
        if keep_config:
            merged = keras.layers.Dense.from_config(self.dense.get_config())
        else:
            merged = keras.layers.Dense(self.units)
        merged.build((None, self.input_dim))
        merged.kernel.assign(self.dense.kernel + update)
        if self.dense.use_bias:
            merged.bias.assign(self.dense.bias)
        return merged

    return merge


@bug("lora_dense", "transposed")
def lora_merge_transposed():
    """merge() adds (A B) transposed"""
    return _lora_with(merge=_merge_with(transpose=True))


@bug("lora_dense", "adds A B · alpha, expected")
def lora_merge_scale_alpha():
    """merge() scales by alpha instead of alpha / rank"""
    return _lora_with(merge=_merge_with(scale=lambda layer: layer.alpha))


@bug("lora_dense", "W alone")
def lora_merge_no_update():
    """merge() copies the Dense without the update"""
    return _lora_with(merge=_merge_with(scale=lambda layer: 0.0))


@bug("lora_dense", "changed the wrapped Dense in place")
def lora_merge_in_place():
    """merge() adds the update to the wrapped Dense's kernel and returns it"""
    return _lora_with(merge=_merge_with(in_place=True))


@bug("lora_dense", "keep the Dense's activation and bias")
def lora_merge_loses_activation():
    """merge() builds Dense(units) without the activation"""
    return _lora_with(merge=_merge_with(keep_config=False))


@bug("lora_dense", "plain keras.layers.Dense")
def lora_merge_returns_self():
    """merge() returns the LoRADense itself"""
    return _lora_with(merge=lambda self: self)


@alternative("lora_dense")
def lora_effective_kernel():
    """x @ (W + A B · alpha / rank), as Keras's Dense.enable_lora computes it"""

    def call(self, inputs):
        update = ops.matmul(self.lora_a, self.lora_b) * (self.alpha / self.rank)
        outputs = ops.matmul(inputs, self.dense.kernel + update)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        return self.dense.activation(outputs)

    return _lora_with(call=call)
