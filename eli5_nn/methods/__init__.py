"""Attribution methods, each written once against the adapter protocol.

Importing this package registers every method in :data:`METHODS`. It imports
no deep-learning framework.
"""

from . import cam, cd, fullgrad, gradient, rollout, text  # noqa: F401  (registration)
from .context import MethodContext, MethodResult, Rows
from .registry import METHODS, MethodSpec, get_method, register

__all__ = [
    "METHODS",
    "MethodContext",
    "MethodResult",
    "MethodSpec",
    "Rows",
    "get_method",
    "register",
]
