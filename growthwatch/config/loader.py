"""Load and check ``growthwatch.yaml``.

``check_file`` collects *every* problem (not just the first) with its YAML path, line and a
hint, because a user fixing a config wants one list, not a loop of edit-run-fail.
``load_config`` runs the same check and raises ``ConfigError`` with that list. Secret
values are never included in a problem message: only their path and variable name.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from growthwatch import currency as iso4217
from growthwatch.config.schema import ENV_REF
from growthwatch.config.schema import schema as config_schema

_ENV_NAME = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


# A growthwatch config is a few KB; anything near these limits is a mistake or an attack
# (a 10 MB file or a 400-byte alias bomb must be refused at once, not chewed on).
MAX_CONFIG_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings, so the schema sees what the user typed, and
    refuses duplicate keys (YAML says a key is unique; PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r} (first on line {first})", key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. products[0].sources[1].api_key
    message: str
    hint: str = ""
    line: int | None = None

    def render(self, filename: str = "") -> str:
        where = f"{filename}:{self.line}: " if self.line and filename else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}{self.path or '<root>'}: {self.message}{hint}"


class ConfigError(ValueError):
    def __init__(self, problems: list[Problem], filename: str = "") -> None:
        self.problems = problems
        self.filename = filename
        body = "\n".join("  " + p.render(filename) for p in problems)
        super().__init__(f"invalid configuration {filename}:\n{body}")


@dataclass(frozen=True)
class SourceConfig:
    type: str
    name: str
    product: str
    schedule: str
    lookback: str
    options: Mapping[str, Any]

    def secret(self, key: str) -> str:
        """Resolve a ``${VAR}`` option from the environment at the moment of use."""
        return resolve_env(self.options[key], f"{self.product}.{self.name}.{key}")


@dataclass(frozen=True)
class ProductConfig:
    id: str
    name: str
    currency: str | None
    sources: tuple[SourceConfig, ...]


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    database: str = "growthwatch"
    retention_policy: str | None = None
    username: str | None = None
    password: str | None = None  # an env reference, resolved by ``secret``
    token: str | None = None
    batch_size: int = 10_000
    timeout: float = 10.0
    raw_events: bool = True
    spool_max_mb: float = 1024.0  # the disk the spool may take while InfluxDB is away


@dataclass(frozen=True)
class Config:
    products: tuple[ProductConfig, ...]
    reporting_currency: str = "USD"
    timezone: str = "UTC"
    fx_rates: Mapping[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)
    data_dir: Path = Path("growthwatch-data")
    ledger_path: Path = Path("growthwatch-data/ledger.duckdb")
    influxdb: InfluxConfig | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # sections owned by later components

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.raw.get(name) or {}
        return value if isinstance(value, Mapping) else {}


def resolve_env(ref: str, where: str) -> str:
    match = _ENV_NAME.match(ref)
    if not match:
        raise ConfigError([Problem(where, "expected an environment reference like ${NAME}")])
    name = match.group(1)
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            [Problem(where, f"environment variable {name} is not set", f"export {name}=...")]
        )
    return value


# -- checking ------------------------------------------------------------------------------


def _lines(node: yaml.Node, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield (*path, key.value), key.start_mark.line + 1
            yield from _lines(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _lines(item, (*path, i))


def _dotted(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _hint(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "x-hint" in schema:
        return str(schema["x-hint"])
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in allowed]
        tips = []
        for key in extra:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            tips.append(f"did you mean {close[0]!r} instead of {key!r}?" if close else "")
        tips = [t for t in tips if t]
        return " ".join(tips) or f"allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return "one of: " + ", ".join(map(str, error.validator_value))
    if error.validator == "required":
        return "add the missing key"
    if error.validator == "type":
        return f"expected {error.validator_value}"
    return ""


def _message(error: jsonschema.ValidationError, secret: bool) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = (error.schema or {}).get("properties") or {}
        extra = [k for k in error.instance if k not in allowed]
        return "unknown key(s): " + ", ".join(map(repr, extra))
    if error.validator == "required":
        return str(error.message).replace(" is a required property", " is required")
    if secret or (error.validator == "pattern" and error.validator_value == ENV_REF):
        return "must be an environment reference like ${NAME}; the value is not shown"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    return str(error.message)


def check_data(data: Any, lines: Mapping[tuple[Any, ...], int] | None = None) -> list[Problem]:
    """Every problem in an already-parsed config document."""
    lines = lines or {}
    problems: list[Problem] = []
    validator = jsonschema.Draft202012Validator(
        config_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        if error.validator in ("allOf", "if", "then"):
            continue
        path = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        secret = bool(schema.get("x-secret"))
        problem = Problem(_dotted(path), _message(error, secret), _hint(error), _line(lines, path))
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            problems.append(problem)
    if isinstance(data, dict):
        problems += _semantic(data, lines)
    return problems


def _line(lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def _semantic(data: dict[str, Any], lines: Mapping[tuple[Any, ...], int]) -> list[Problem]:
    """Rules JSON Schema cannot say: currencies, unique ids, FX coverage."""
    problems: list[Problem] = []

    def add(path: tuple[Any, ...], message: str, hint: str = "") -> None:
        problems.append(Problem(_dotted(path), message, hint, _line(lines, path)))

    reporting = data.get("reporting") or {}
    currencies: list[tuple[tuple[Any, ...], Any]] = [
        (("reporting", "currency"), reporting.get("currency"))
    ]
    raw_products = data.get("products")
    products: list[Any] = raw_products if isinstance(raw_products, list) else []
    for i, product in enumerate(products):
        if isinstance(product, dict):
            currencies.append((("products", i, "currency"), product.get("currency")))
    for path, code in currencies:
        if code is not None and not iso4217.is_currency(code):
            add(path, f"{code!r} is not an ISO 4217 currency code", "e.g. USD, EUR, GBP, JPY")
    ids: dict[str, int] = {}
    for i, product in enumerate(products):
        if not isinstance(product, dict):
            continue
        pid = product.get("id")
        if isinstance(pid, str):
            if pid in ids:
                add(
                    ("products", i, "id"),
                    f"duplicate product id {pid!r}",
                    f"first at products[{ids[pid]}]",
                )
            ids.setdefault(pid, i)
        names: set[str] = set()
        for j, source in enumerate(product.get("sources") or []):
            if isinstance(source, dict):
                name = str(source.get("name") or source.get("type"))
                if name in names:
                    add(
                        ("products", i, "sources", j),
                        f"two sources named {name!r} in product {pid!r}",
                        "give one of them a distinct `name:`",
                    )
                names.add(name)
    for path, reason in NOT_SUPPORTED.items():
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            add(path, "not supported yet", reason)
    tz = reporting.get("timezone")
    if isinstance(tz, str) and tz not in _timezones():
        close = difflib.get_close_matches(tz, sorted(_timezones()), n=1)
        add(("reporting", "timezone"), f"{tz!r} is not an IANA time zone",
            f"did you mean {close[0]}?" if close else "e.g. UTC, Europe/Berlin, America/New_York")  # fmt: skip
    _inline_credentials(data, (), add)
    fx = reporting.get("fx_rates") or {}
    if isinstance(fx, dict):
        for code in fx:
            if isinstance(code, str) and not iso4217.is_currency(code):
                add(("reporting", "fx_rates", code), f"{code!r} is not an ISO 4217 currency code")
    return problems


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """How many nodes the document has with every alias expanded (stops past ``limit``)."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in memo:
            return memo[id(n)]
        total = 1
        if isinstance(n, yaml.SequenceNode):
            for child in n.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        memo[id(n)] = total
        return total

    return size(node)


# Keys the schema knows but nothing implements yet: refused with the reason, never silently
# accepted (a key that is accepted must do something).
NOT_SUPPORTED: dict[tuple[str, ...], str] = {
    ("metrics", "include_metered"): "metered usage is always left out of MRR (the policy in "
    "docs/metrics.md); a switch to count it is not built yet: remove the key",
}

_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _inline_credentials(value: Any, path: tuple[Any, ...], add: Any) -> None:
    """A password inside a URL (``http://user:secret@host``) is a secret written inline:
    it would be printed wherever the URL is (logs, ``serve``'s start-up lines)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _inline_credentials(v, (*path, k), add)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _inline_credentials(v, (*path, i), add)
    elif isinstance(value, str):
        match = _URL_PASSWORD.match(value)
        if match and not _ENV_NAME.match(match.group(1)) and not _ENV_NAME.match(value):
            add(path, "a password is written inside this URL",
                "remove it from the URL and give it as an environment reference, e.g. "
                "password: ${INFLUX_PASSWORD} (or the whole URL as ${VAR})")  # fmt: skip


def check_file(path: str | Path) -> tuple[list[Problem], Any]:
    """Parse and check a YAML config file; returns (problems, parsed data).

    Refused before any checking: a file over ``MAX_CONFIG_BYTES``, bytes that are not
    UTF-8 (a BOM is fine), duplicate keys, and aliases that expand past
    ``MAX_EXPANDED_NODES`` nodes (a "billion laughs" file).
    """
    size = Path(path).stat().st_size
    if size > MAX_CONFIG_BYTES:
        return [Problem("", f"the file is {size / 1e6:.1f} MB; a growthwatch config is at most "
                        f"{MAX_CONFIG_BYTES // 1024} KiB", "is this the right file?")], None  # fmt: skip
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [Problem("", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}",
                        "save the file as UTF-8", line)], None  # fmt: skip
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None and _expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            return [Problem("", f"aliases expand to more than {MAX_EXPANDED_NODES:,} values",
                            "a config needs no nested aliases; write the values out")], None  # fmt: skip
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        yaml_line = mark.line + 1 if mark else None
        return [Problem("", f"not valid YAML: {getattr(exc, 'problem', exc)}", "", yaml_line)], None
    if data is None:
        return [Problem("", "the file is empty", "start from growthwatch.example.yaml")], None
    lines: dict[tuple[Any, ...], int] = {}
    for key_path, line in _lines(node) if node is not None else ():
        lines.setdefault(key_path, line)  # a key's own line, not its value's first line
    return check_data(data, lines), data


def env_problems(data: Any) -> list[Problem]:
    """Environment references whose variable is not set (reported, values never read out)."""
    problems: list[Problem] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
        elif isinstance(value, str):
            match = _ENV_NAME.match(value)
            if match and match.group(1) not in os.environ:
                name = match.group(1)
                problems.append(
                    Problem(
                        _dotted(path),
                        f"environment variable {name} is not set",
                        f"export {name}=...",
                    )
                )

    walk(data, ())
    return problems


# -- loading -------------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    problems, data = check_file(path)
    if problems:
        raise ConfigError(problems, str(path))
    return build_config(data, base=Path(path).resolve().parent)


def build_config(data: Mapping[str, Any], base: Path = Path(".")) -> Config:
    reporting = data.get("reporting") or {}
    storage = data.get("storage") or {}
    data_dir = base / storage.get("data_dir", "growthwatch-data")
    ledger = base / storage["ledger"] if "ledger" in storage else data_dir / "ledger.duckdb"
    products = []
    for p in data["products"]:
        sources = []
        for s in p.get("sources") or []:
            if s.get("enabled", True) is False:
                continue
            options = {
                k: v for k, v in s.items() if k not in ("type", "name", "schedule", "lookback")
            }
            sources.append(
                SourceConfig(
                    type=s["type"],
                    name=s.get("name", s["type"]),
                    product=p["id"],
                    schedule=s.get("schedule", "15m"),
                    lookback=s.get("lookback", "3d"),
                    options=options,
                )
            )
        products.append(
            ProductConfig(p["id"], p.get("name", p["id"]), p.get("currency"), tuple(sources))
        )
    fx = {
        code: tuple(
            sorted((date.fromisoformat(str(r["date"])), Decimal(str(r["rate"]))) for r in rates)
        )
        for code, rates in (reporting.get("fx_rates") or {}).items()
    }
    influx = data.get("influxdb")
    return Config(
        products=tuple(products),
        reporting_currency=reporting.get("currency", "USD"),
        timezone=reporting.get("timezone", "UTC"),
        fx_rates=fx,
        data_dir=data_dir,
        ledger_path=ledger,
        influxdb=InfluxConfig(**influx) if influx else None,
        raw=dict(data),
    )
