"""Between validation and sending: names resolved to IDs, duplicates skipped, pools assigned.

Everything here is decided once, in input order, before the first request, so a rerun of the same
command plans exactly the same requests (and the journal can resume them).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from batch_attend.directory import Directory, LookupProblem
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import Lead, duplicate_of, split_operators
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus

DISTRIBUTIONS = ("round-robin", "balanced")


class PoolError(BatchAttendError):
    """The operator pool cannot be used (empty, unreadable, or a member that does not resolve)."""


def skip_duplicates(leads: list[Lead], outcomes: list[Outcome | None]) -> list[Lead]:
    """Later rows with a phone already seen are ``skipped`` (``duplicate_row``), not sent."""
    duplicates = duplicate_of(leads)
    if not duplicates:
        return leads
    for lead in leads:
        if lead.index in duplicates:
            outcomes[lead.index] = Outcome(
                RowStatus.SKIPPED,
                phone=lead.phone,
                operators=lead.operators,
                error_code=ErrorCode.DUPLICATE_ROW,
                error_message=f"same phone as row {duplicates[lead.index]}",
            )
    return [lead for lead in leads if lead[0] not in duplicates]


def resolve_names(
    leads: list[Lead], outcomes: list[Outcome | None], directory: Directory
) -> list[Lead]:
    """Operator and department cells turned into IDs; rows that do not resolve become ``invalid``.

    Resolved once per distinct (operators, department) pair: a sheet repeats the same few.
    """
    cache: dict[tuple, tuple | LookupProblem] = {}
    kept: list[Lead] = []
    for lead in leads:
        key = (lead.operators, lead.department)
        resolved = cache.get(key)
        if resolved is None:
            try:
                operators = tuple(dict.fromkeys(directory.operator_id(v) for v in lead.operators))
                department = directory.department_id(lead.department) if lead.department else None
                resolved = (operators, department)
            except LookupProblem as problem:
                resolved = problem
            cache[key] = resolved
        if isinstance(resolved, LookupProblem):
            outcomes[lead.index] = Outcome(
                RowStatus.INVALID, error_code=resolved.code, error_message=str(resolved)
            )
        elif resolved == key:
            kept.append(lead)
        else:
            kept.append(lead._replace(operators=resolved[0], department=resolved[1]))
    return kept


def read_pool(pool: str | None, pool_file: Path | None) -> tuple[str, ...]:
    """Pool members from ``--pool A,B,C`` and/or a file (one per line, ``#`` comments)."""
    members: list[str] = []
    if pool:
        members.extend(split_operators(pool))
    if pool_file is not None:
        try:
            text = Path(pool_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise PoolError(
                _("{pool_file}: cannot read the pool file ({strerror}).").format(
                    pool_file=pool_file, strerror=exc.strerror
                )
            ) from exc
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            members.extend(split_operators(line))
    return tuple(dict.fromkeys(members))


def resolve_pool(pool: tuple[str, ...], directory: Directory) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(directory.operator_id(member) for member in pool))
    except LookupProblem as problem:
        raise PoolError(_("--pool: {problem}").format(problem=problem)) from problem


def assign_pool(leads: list[Lead], pool: tuple[str, ...], distribute: str) -> list[Lead]:
    """Rows without operators get one pool member each.

    ``round-robin`` takes members in turn; ``balanced`` gives each row to the member with the
    fewest rows so far, counting the rows that already name pool members (ties: pool order).
    """
    if not pool:
        return leads
    load = Counter({member: 0 for member in pool})
    if distribute == "balanced":
        for lead in leads:
            for op in lead.operators:
                if op in load:
                    load[op] += 1
    turn = 0
    assigned: list[Lead] = []
    for lead in leads:
        if lead.operators:
            assigned.append(lead)
            continue
        if distribute == "balanced":
            member = min(pool, key=lambda m: load[m])  # min keeps the first of equals
        else:
            member = pool[turn % len(pool)]
            turn += 1
        load[member] += 1
        assigned.append(lead._replace(operators=(member,)))
    return assigned
