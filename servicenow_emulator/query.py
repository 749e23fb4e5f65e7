"""ServiceNow encoded queries (``sysparm_query``): parsing and evaluation.

Supported: ``field=value``, ``!=``, ``LIKE``, ``NOT LIKE``, ``STARTSWITH``,
``ENDSWITH``, ``IN``, ``NOT IN``, ``ISEMPTY``, ``ISNOTEMPTY``, ``<``, ``<=``,
``>``, ``>=``; ``^`` (AND), ``^OR`` (OR with the previous condition), ``^NQ``
(new OR-group), ``ORDERBY<field>`` and ``ORDERBYDESC<field>``.

Like ServiceNow (with the default ``glide.invalid_query.returns_no_rows=false``),
a condition on an unknown field or one that cannot be parsed is silently
DROPPED, which widens the result. ``javascript:`` values are not executed
(ServiceNow would run them on the server); they are compared literally.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

_COND_RE = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_.]*)"
    r"(?P<op>!=|>=|<=|=|>|<|NOT LIKE|LIKE|STARTSWITH|ENDSWITH|NOT IN|IN|ISNOTEMPTY|ISEMPTY)"
    r"(?P<value>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str

    def matches(self, record: Dict[str, str]) -> bool:
        actual = str(record.get(self.field, "") or "")
        a, v = actual.casefold(), self.value.casefold()
        op = self.op
        if op == "=":
            return a == v
        if op == "!=":
            return a != v
        if op == "LIKE":
            return v in a
        if op == "NOT LIKE":
            return v not in a
        if op == "STARTSWITH":
            return a.startswith(v)
        if op == "ENDSWITH":
            return a.endswith(v)
        if op in ("IN", "NOT IN"):
            members = {item.strip().casefold() for item in self.value.split(",")}
            return (a in members) == (op == "IN")
        if op == "ISEMPTY":
            return a == ""
        if op == "ISNOTEMPTY":
            return a != ""
        left, right = _comparable(actual), _comparable(self.value)
        try:
            if op == ">":
                return left > right
            if op == "<":
                return left < right
            if op == ">=":
                return left >= right
            if op == "<=":
                return left <= right
        except TypeError:
            return False
        return False


def _comparable(value: str):
    try:
        return float(value)
    except ValueError:
        return value


@dataclass
class Query:
    # OR of groups; each group is an AND of terms; each term is an OR of conditions.
    groups: List[List[List[Condition]]] = field(default_factory=list)
    order: List[Tuple[str, bool]] = field(default_factory=list)  # (field, descending)

    def matches(self, record: Dict[str, str]) -> bool:
        groups = [g for g in self.groups if g]
        if not groups:
            return True
        return any(all(any(c.matches(record) for c in term) for term in group) for group in groups)

    def sort(self, records: List[Dict[str, str]]) -> List[Dict[str, str]]:
        result = list(records)
        for name, descending in reversed(self.order):
            result.sort(key=lambda r: _sort_key(r.get(name, "")), reverse=descending)
        return result


def _sort_key(value) -> Tuple[int, object]:
    value = "" if value is None else str(value)
    try:
        return (0, float(value))
    except ValueError:
        return (1, value.casefold())


def parse(encoded: str, known_fields: Iterable[str]) -> Query:
    """Parse an encoded query, dropping conditions on unknown fields."""
    known = set(known_fields)
    query = Query()
    if not encoded:
        return query
    for group_text in encoded.split("^NQ"):
        group: List[List[Condition]] = []
        for token in group_text.split("^"):
            if not token or token == "EQ":
                continue
            if token.startswith("ORDERBYDESC"):
                name = token[len("ORDERBYDESC"):]
                if name in known:
                    query.order.append((name, True))
                continue
            if token.startswith("ORDERBY"):
                name = token[len("ORDERBY"):]
                if name in known:
                    query.order.append((name, False))
                continue
            is_or = token.startswith("OR") and group != []
            condition = _condition(token[2:] if is_or else token, known)
            if condition is None:
                continue  # ServiceNow drops invalid/unknown conditions
            if is_or:
                group[-1].append(condition)
            else:
                group.append([condition])
        query.groups.append(group)
    return query


def _condition(text: str, known: set) -> Optional[Condition]:
    match = _COND_RE.match(text)
    if not match or match.group("field") not in known:
        return None
    return Condition(match.group("field"), match.group("op"), match.group("value"))
