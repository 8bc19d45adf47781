"""Every exception latentjax raises on purpose; each names the problem in one line.

``LatentJaxError`` is the base (the CLI prints it on one line and exits with code 2). Bad arguments
raise ``InputError``, which is also a ``ValueError``, so ``except ValueError`` catches them as it
would for numpy or JAX.
"""


class LatentJaxError(Exception):
    """A problem with the user's input (data, files, arguments), reported in one line."""


class InputError(LatentJaxError, ValueError):
    """A bad argument: a wrong shape, dtype, value or option; the message names the argument."""


class DataError(LatentJaxError, ValueError):
    """A data set is missing, corrupt, or has the wrong shape or values."""


class CheckpointError(LatentJaxError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model."""


class TrainingDiverged(LatentJaxError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
