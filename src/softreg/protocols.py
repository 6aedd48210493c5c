"""The contracts between softreg's parts, as :class:`typing.Protocol` classes: what ``fit``
needs of a model and of a data-parallel communicator. Any object with these methods will do."""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]
"""A model's parameters by name (``"W"``, ``"b"``, ...): arrays of one array namespace."""
