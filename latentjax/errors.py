"""Errors that reach a user: each names the problem in one line (the CLI exits with code 2)."""


class LatentJaxError(Exception):
    """A problem with the user's input (data, files, arguments), reported in one line."""


class DataError(LatentJaxError, ValueError):
    """A data set is missing, corrupt, or has the wrong shape or values."""


class CheckpointError(LatentJaxError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model."""


class TrainingDiverged(LatentJaxError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
