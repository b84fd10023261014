"""Errors that rootscope raises on purpose.

Every message names the file (when there is one) and says what to do. The CLI prints the message
without a traceback and exits with code 2.
"""

from __future__ import annotations


class RootscopeError(Exception):
    """Base class: a problem with the user's input or settings, explained in the message."""


class InputError(RootscopeError):
    """An input file is missing, unreadable, corrupt or of the wrong kind."""


class ShapeMismatchError(RootscopeError):
    """Two inputs that must match (image and labels, image and mask) do not."""


class ModelError(RootscopeError):
    """A model file is corrupt, from another tool or version, or does not fit the data."""


class ConfigError(RootscopeError):
    """A setting is missing, unknown or of the wrong type."""


class AlignmentError(RootscopeError):
    """Two frames could not be registered with enough confidence."""


class OutputError(RootscopeError):
    """An output cannot be written: its folder is not writable, another run holds it, or it would
    overwrite an input."""
