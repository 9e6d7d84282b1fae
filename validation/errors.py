"""Typed errors of the validation package. Every message names the fix."""

__all__ = ["ValidationError", "ConfigError", "UnknownDatasetError", "UnknownPresetError",
           "MissingDependencyError", "DatasetUnavailableError"]


class ValidationError(Exception):
    """Base class of the errors raised on purpose by ``validation``."""


class ConfigError(ValidationError, ValueError):
    """An experiment setting is out of range or conflicts with another one."""


class UnknownDatasetError(ValidationError, KeyError):
    """The dataset name is not one of :func:`validation.data.available_datasets`."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownPresetError(ValidationError, KeyError):
    """The preset name is not one of :data:`validation.presets.PRESETS`."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(ValidationError, ImportError):
    """An optional package needed for this dataset is not installed (the message says which extra)."""


class DatasetUnavailableError(ValidationError, FileNotFoundError):
    """The data files are not on disk and downloading was not allowed (pass ``--download``)."""
