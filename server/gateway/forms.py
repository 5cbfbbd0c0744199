"""Request parameters: Stripe's form encoding in, typed values out.

This module owns reading the parameters of a Stripe v1 request, exactly as
the stripe SDK encodes them: ``application/x-www-form-urlencoded`` pairs with
bracketed keys (``metadata[order_id]=o1``, ``payment_method_types[0]=card``,
``automatic_payment_methods[enabled]=true``, ``expand[]=latest_charge``), every
value a string. It is pure: it takes pairs and returns values or raises
InvalidRequest with Stripe's messages and codes; it never sees a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from server.gateway.errors import InvalidRequest

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SUBKEY = re.compile(r"\[([^\[\]]*)\]")

# Stripe's limits on metadata.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracketed form keys into dicts of strings.

    ``a[b]=1`` → ``{"a": {"b": "1"}}``. Arrays stay dicts keyed by index
    (``a[0]=x`` and ``a[]=x`` alike) until a getter asks for a list, so that
    ``metadata[0]=x`` is still a hash. A key used both as a scalar and as a
    container is Stripe's "Invalid hash" error.
    """
    root: dict[str, Any] = {}
    appended = 0
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise InvalidRequest(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SUBKEY.findall(match.group(2))]
        node = root
        for depth, part in enumerate(path):
            if part == "":
                # `a[]` appends: give it an index later than any explicit one.
                appended += 1
                part = f"\x00{appended:09d}"
            last = depth == len(path) - 1
            existing = node.get(part)
            if last:
                if isinstance(existing, dict):
                    raise InvalidRequest(f"Invalid hash: {_name(path[: depth + 1])}", param=path[0])
                node[part] = value
            else:
                if existing is None:
                    existing = node[part] = {}
                elif not isinstance(existing, dict):
                    raise InvalidRequest(f"Invalid hash: {_name(path[: depth + 1])}", param=path[0])
                node = existing
    return root


def _name(path: list[str]) -> str:
    return path[0] + "".join(f"[{part}]" for part in path[1:])


def _as_list(node: dict[str, Any]) -> list[Any] | None:
    """The list a dict of index keys stands for, or None if it is a hash."""
    if not node or not all(key.isdigit() or key.startswith("\x00") for key in node):
        return None
    order = sorted(node, key=lambda key: (1, int(key[1:])) if key.startswith("\x00") else (0, int(key)))
    return [node[key] for key in order]


class Params:
    """Typed, Stripe-validated access to a decoded parameter dict.

    Each getter marks its parameter as read; `reject_unknown()` then refuses
    whatever nobody read, as Stripe does (``parameter_unknown``).
    """

    def __init__(self, data: Mapping[str, Any]):
        self._data = dict(data)
        self._read: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def _get(self, name: str) -> Any:
        self._read.add(name)
        return self._data.get(name)

    def _required(self, name: str) -> Any:
        value = self._get(name)
        if value is None or value == "":
            raise InvalidRequest(f"Missing required param: {name}.", code="parameter_missing", param=name)
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._required(name) if required else self._get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid string: {name}", code="parameter_invalid_string", param=name)
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise InvalidRequest(f"Invalid integer: {value}", code="parameter_invalid_integer", param=name) from None

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise InvalidRequest(f"Invalid boolean: {value}", param=name)
        return value == "true"

    def choice(self, name: str, options: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is not None and value not in options:
            allowed = ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 else options[0]
            raise InvalidRequest(f"Invalid {name}: must be one of {allowed}", param=name)
        return value

    def strings(self, name: str) -> list[str] | None:
        value = self._get(name)
        if value is None:
            return None
        if value == "":
            return []
        items = _as_list(value) if isinstance(value, dict) else None
        if items is None or not all(isinstance(item, str) for item in items):
            raise InvalidRequest(f"Invalid array: {name}", param=name)
        return items

    def mapping(self, name: str) -> dict[str, Any] | None:
        """A nested parameter passed through as given (e.g. payment_method_options)."""
        value = self._get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise InvalidRequest(f"Invalid hash: {name}", param=name)
        return value

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        """Stripe metadata: ``metadata=`` clears it all, an empty value unsets that key."""
        value = self._get(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidRequest("Invalid metadata: must be a hash of strings", param=name)
        if len(value) > METADATA_MAX_KEYS:
            raise InvalidRequest(f"Metadata can have a maximum of {METADATA_MAX_KEYS} keys.", param=name)
        for key, item in value.items():
            if len(key) > METADATA_KEY_MAX:
                raise InvalidRequest(
                    f"Metadata keys can have a maximum length of {METADATA_KEY_MAX} characters.",
                    param=f"{name}[{key}]",
                )
            if len(item) > METADATA_VALUE_MAX:
                raise InvalidRequest(
                    f"Metadata values can have a maximum length of {METADATA_VALUE_MAX} characters.",
                    param=f"{name}[{key}]",
                )
        return dict(value)

    def expand(self) -> list[str]:
        return self.strings("expand") or []

    def reject_unknown(self) -> None:
        for name in self._data:
            if name not in self._read:
                raise InvalidRequest(f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def merge_metadata(current: Mapping[str, str], update: Mapping[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update rule: given keys are set, empty values unset, others kept."""
    if update is None:
        return dict(current)
    if not update:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
