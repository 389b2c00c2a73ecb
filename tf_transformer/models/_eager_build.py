"""Models whose variables exist before Keras traces their first step."""

import keras
import numpy as np


class BuiltBeforeTracing(keras.Model):
    """Base of the token-id models: build eagerly, trace once.

    Without a distribution strategy, Keras (TensorFlow backend) creates the
    model's, the optimizer's and the metrics' variables inside the first
    traced train or test step. A variable created there makes TensorFlow
    trace the whole step a second time and initialise every variable through
    a traced function, which about doubles the first step of a small model on
    a CPU (measured by bench/first_step.py). Under a strategy Keras builds
    them symbolically before tracing, and this does nothing.

    Subclasses give `_any_length_shape` (the `build` shape with unknown batch
    and lengths) and `_one_token_inputs` (a smallest input, for the compiled
    loss and metrics to build on).
    """

    def _any_length_shape(self):
        raise NotImplementedError

    def _one_token_inputs(self, ids):
        raise NotImplementedError

    def make_train_function(self, force=False):
        self._build_training_state()
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        self._build_training_state()
        return super().make_test_function(force)

    def make_predict_function(self, force=False):
        self._build_for_any_length()  # variables made in the trace: a second trace
        return super().make_predict_function(force)

    def _build_for_any_length(self):
        """No variable depends on the batch size or the sequence lengths."""
        if not self.built:
            self.build(self._any_length_shape())

    def _build_training_state(self):
        """Create the model's, the optimizer's and the metrics' variables eagerly."""
        if getattr(self, "_distribute_strategy", None) is not None:
            return
        self._build_for_any_length()
        if not self.compiled:
            return  # Keras reports the missing compile() itself
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        if self.train_function is None and self.test_function is None:
            # The compiled loss and metrics build on their first batch: a
            # one-token batch here, then their state is reset.
            ids = np.ones((1, 1), "int32")
            inputs = self._one_token_inputs(ids)
            self.compute_metrics(inputs, ids, self(inputs, training=False))
            self.reset_metrics()
