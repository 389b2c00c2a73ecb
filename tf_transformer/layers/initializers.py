"""Small helpers shared by the layers."""


def clone_initializer(initializer):
    """A fresh initializer with the same config, so sublayers never share seeds."""
    return initializer.__class__.from_config(initializer.get_config())
