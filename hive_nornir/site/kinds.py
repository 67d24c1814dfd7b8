"""Value kinds: one object both checks a value and describes it as JSON Schema (single source of truth)."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Surprise

if TYPE_CHECKING:
    from .rules import KeySpec

# A checker yields (relative key path, problem, value, allowed) for each problem found.
Problem = tuple[tuple[Any, ...], str, Any, str]

_IPV4_CIDR_RE = r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"
_IPV4_RE = r"^(\d{1,3}\.){3}\d{1,3}$"


class Kind:
    """Base of all value kinds."""

    expected: str = "a value"

    def check(self, value: Any) -> list[Problem]:
        """Problems of a value; empty when valid."""
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        """JSON Schema fragment for this kind."""
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Kind):
    """A string, optionally matching a regex and bounded in length."""

    pattern: str | None = None
    max_length: int | None = None
    expected: str = "a string"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, str):
            return [((), "is not a string", value, self.expected)]
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return [((), "has an invalid format", value, self.expected)]
        if self.max_length is not None and len(value) > self.max_length:
            return [((), f"is longer than {self.max_length} characters", value, self.expected)]
        return []

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern})$"
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        return out


@dataclass(frozen=True)
class Int(Kind):
    """An integer in a closed range (booleans are not integers here)."""

    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""

    @property
    def expected(self) -> str:  # type: ignore[override]
        unit = f" ({self.unit})" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}{unit}"
        if self.minimum is not None:
            return f"an integer >= {self.minimum}{unit}"
        return f"an integer{unit}"

    def check(self, value: Any) -> list[Problem]:
        if isinstance(value, bool) or not isinstance(value, int):
            return [((), "is not an integer", value, self.expected)]
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            return [((), "is out of range", value, self.expected)]
        return []

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True)
class Bool(Kind):
    """A YAML boolean. hive-builder tests stage keys for truth (`'False'` means true): `truthy` warns and keeps that."""

    expected: str = "true or false"
    truthy: bool = False

    def check(self, value: Any) -> list[Problem]:
        if isinstance(value, bool):
            return []
        if self.truthy:
            problem = Surprise(f"is not a boolean; hive-builder tests it for truth, so it means {bool(value)}")
            return [((), problem, value, self.expected)]
        return [((), "is not a boolean", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Kind):
    """One of a fixed set of strings."""

    values: tuple[str, ...] = ()

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.values)

    def check(self, value: Any) -> list[Problem]:
        return [] if value in self.values else [((), "is not allowed", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}


@dataclass(frozen=True)
class Network(Kind):
    """An IP network in CIDR notation without host bits (hive-builder parses it strictly)."""

    version: int = 4

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "an IPv4 CIDR like 192.168.0.0/24" if self.version == 4 else "an IPv6 CIDR like fd00:1::/64"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, str):
            return [((), "is not a valid network", value, self.expected)]
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return [((), "is not a valid network", value, self.expected)]
        if net.version != self.version or "/" not in value:
            return [((), "is not a valid network", value, self.expected)]
        if ipaddress.ip_interface(value).ip != net.network_address:
            return [((), f"has host bits set (the network is {net})", value, self.expected)]
        return []

    def schema(self) -> dict[str, Any]:
        if self.version == 4:
            return {"type": "string", "pattern": _IPV4_CIDR_RE}
        return {"type": "string", "pattern": r"^[0-9A-Fa-f:]+/\d{1,3}$"}


@dataclass(frozen=True)
class Address(Kind):
    """A single IPv4 address."""

    expected: str = "an IPv4 address like 192.168.0.10"

    def check(self, value: Any) -> list[Problem]:
        try:
            ok = isinstance(value, str) and ipaddress.ip_address(value).version == 4
        except ValueError:
            ok = False
        return [] if ok else [((), "is not a valid IPv4 address", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": _IPV4_RE}


@dataclass(frozen=True)
class ListOf(Kind):
    """A list whose items all have one kind."""

    item: Kind = field(default_factory=Str)
    min_items: int = 0
    unique: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        size = f" of at least {self.min_items}" if self.min_items else ""
        return f"a list{size} of {self.item.expected}"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, list):
            return [((), "is not a list", value, self.expected)]
        out: list[Problem] = []
        if len(value) < self.min_items:
            out.append(((), f"has {len(value)} items", value, self.expected))
        seen: list[Any] = []
        for idx, item in enumerate(value):
            out.extend(((idx, *p), m, v, a) for p, m, v, a in self.item.check(item))
            if self.unique and item in seen:
                out.append(((idx,), "is listed twice", item, "each item once"))
            seen.append(item)
        return out

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.unique:
            out["uniqueItems"] = True
        return out


@dataclass(frozen=True)
class Mapping(Kind):
    """A free-form mapping (provider-specific objects hive-builder passes through)."""

    expected: str = "a mapping"

    def check(self, value: Any) -> list[Problem]:
        return [] if isinstance(value, dict) else [((), "is not a mapping", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}


@dataclass(frozen=True)
class AnyOf(Kind):
    """A value that may take one of several kinds (image_name: a string or an Azure image mapping)."""

    kinds: tuple[Kind, ...] = ()

    @property
    def expected(self) -> str:  # type: ignore[override]
        return " or ".join(k.expected for k in self.kinds)

    def check(self, value: Any) -> list[Problem]:
        if any(not k.check(value) for k in self.kinds):
            return []
        return [((), "has the wrong type", value, self.expected)]

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [k.schema() for k in self.kinds]}


@dataclass(frozen=True)
class Obj(Kind):
    """A mapping with known keys; unknown keys are errors (with a did-you-mean)."""

    keys: Callable[[], tuple[KeySpec, ...]] = tuple
    expected: str = "a mapping"

    def check(self, value: Any) -> list[Problem]:
        from .rules import check_keys

        if not isinstance(value, dict):
            return [((), "is not a mapping", value, self.expected)]
        return check_keys(value, self.keys())

    def schema(self) -> dict[str, Any]:
        from .rules import object_schema

        return object_schema(self.keys())


# tz names: Area/Location components of letters, digits, '_', '+', '-' (no '.', so no '..'; no quotes, no spaces)
_TZ_NAME_RE = r"[A-Za-z0-9_+-]{1,30}(/[A-Za-z0-9_+-]{1,30}){0,3}"


@functools.lru_cache(maxsize=1)
def controller_timezones() -> frozenset[str]:
    """The controller's tz database (system zoneinfo or the tzdata package); empty when it has none."""
    try:
        return frozenset(zoneinfo.available_timezones())
    except (OSError, ValueError):
        return frozenset()


@dataclass(frozen=True)
class TimeZone(Kind):
    """A tz database name: a safe path under /usr/share/zoneinfo that the controller's tz database knows."""

    expected: str = "a tz database zone name like Asia/Tokyo or Etc/UTC"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, str) or not re.fullmatch(_TZ_NAME_RE, value):
            return [((), "is not a time zone name", value, self.expected)]
        known = controller_timezones()
        if known and value not in known:
            close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return [((), "is not in the tz database" + hint, value, self.expected)]
        return []

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^(?:{_TZ_NAME_RE})$"}


# OpenSSH public key line: optional authorized_keys options, a key type, the base64 body, an optional comment
_SSH_KEY_RE = (r"(\S.*\s)?(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|"
               r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/=.]+(\s.*)?")


@dataclass(frozen=True)
class SshPublicKey(Kind):
    """One OpenSSH public key on one line (a line break would smuggle in a second key)."""

    expected: str = "one OpenSSH public key line like 'ssh-ed25519 AAAA... user@host'"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, str) or "\n" in value.strip() or "\r" in value:
            return [((), "is not a single public key line", value, self.expected)]
        if not re.fullmatch(_SSH_KEY_RE, value.strip()):
            return [((), "is not an OpenSSH public key", value, self.expected)]
        return []

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^(?:{_SSH_KEY_RE})$"}


@dataclass(frozen=True)
class NamedMap(Kind):
    """A mapping of names (each a `key` kind) to settings (each a `value` kind; empty ones allowed if `empty`)."""

    key: Kind = field(default_factory=Str)
    value: Kind = field(default_factory=Mapping)
    empty: bool = True  # a name with no settings (`name:`) is allowed

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"a mapping of {self.key.expected} to {self.value.expected}"

    def check(self, value: Any) -> list[Problem]:
        if not isinstance(value, dict):
            return [((), "is not a mapping", value, self.expected)]
        out: list[Problem] = []
        for name, item in value.items():
            out.extend(((name, *p), m, v, a) for p, m, v, a in self.key.check(name))
            if item is not None or not self.empty:
                out.extend(((name, *p), m, v, a) for p, m, v, a in self.value.check(item))
        return out

    def schema(self) -> dict[str, Any]:
        values = {"anyOf": [self.value.schema(), {"type": "null"}]} if self.empty else self.value.schema()
        return {"type": "object", "propertyNames": self.key.schema(), "additionalProperties": values}
