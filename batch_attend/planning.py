"""Between validation and sending: names resolved to IDs, duplicates skipped, pools assigned.

Everything here is decided once, in input order, before the first request, so a rerun of the same
command plans exactly the same requests (and the journal can resume them).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from batch_attend.directory import Directory, LookupProblem
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import PENDING, operators_key, operators_of, split_operators
from batch_attend.outcomes import ErrorCode, RowStatus

DISTRIBUTIONS = ("round-robin", "balanced")


class PoolError(BatchAttendError):
    """The operator pool cannot be used (empty, unreadable, or a member that does not resolve)."""


def skip_duplicates(plan: pl.DataFrame) -> pl.DataFrame:
    """Later rows with a phone already planned are ``skipped`` (``duplicate_row``), not sent.

    Sending the same phone twice would at best cost a request and at worst race two starts with
    different operators, so later copies are skipped (``--allow-duplicates`` turns this off).
    """
    first_row = pl.col("row").first().over(pl.when(PENDING).then(pl.col("phone")))
    duplicate = PENDING & (pl.col("first_row") != pl.col("row"))
    return (
        plan.with_columns(first_row=first_row)  # one hash of the phones
        .with_columns(duplicate=duplicate)
        .with_columns(
            status=pl.when("duplicate").then(pl.lit(str(RowStatus.SKIPPED))).otherwise("status"),
            error_code=pl.when("duplicate")
            .then(pl.lit(str(ErrorCode.DUPLICATE_ROW)))
            .otherwise("error_code"),
            error_message=pl.when("duplicate")
            .then(pl.lit("same phone as row ") + pl.col("first_row").cast(pl.String))
            .otherwise("error_message"),
        )
        .select(plan.columns)
    )


def decide_pending(
    plan: pl.DataFrame, status: RowStatus, code: ErrorCode, message: str
) -> pl.DataFrame:
    """Every row still to be sent gets ``status`` with ``code: message`` instead."""
    return plan.with_columns(
        status=pl.col("status").fill_null(str(status)),
        error_code=pl.when(PENDING).then(pl.lit(str(code))).otherwise("error_code"),
        error_message=pl.when(PENDING).then(pl.lit(message)).otherwise("error_message"),
    )


def _pair(operators: str, department: str | None) -> str:
    """One text key per (operators, department) pair; :data:`_PAIR` is the same in polars."""
    return f"{len(operators)}:{operators}" + ("-" if department is None else "+" + department)


_PAIR = (
    pl.col("operators").str.len_chars().cast(pl.String)
    + pl.lit(":")
    + pl.col("operators")
    + pl.when(pl.col("department").is_null())
    .then(pl.lit("-"))
    .otherwise(pl.lit("+") + pl.col("department"))
)


def resolve_names(plan: pl.DataFrame, directory: Directory) -> pl.DataFrame:
    """Operator and department cells turned into IDs; rows that do not resolve become ``invalid``.

    Resolved once per distinct (operators, department) pair: a sheet repeats the same few.
    """
    pairs = plan.filter(PENDING).select("operators", "department").unique().rows()
    operators: dict[str, str] = {}
    departments: dict[str, str | None] = {}
    problems: dict[str, LookupProblem] = {}
    for cell, department in pairs:
        key = _pair(cell, department)
        try:
            ids = dict.fromkeys(directory.operator_id(v) for v in operators_of(cell))
            operators[key] = operators_key(tuple(ids))
            departments[key] = directory.department_id(department) if department else None
        except LookupProblem as problem:
            problems[key] = problem
    if not problems and all(
        operators[_pair(c, d)] == c and departments[_pair(c, d)] == d for c, d in pairs
    ):
        return plan  # IDs already, as most sheets hold: nothing to rewrite
    pair = _PAIR
    problem = PENDING & pair.is_in(list(problems))
    resolved = PENDING & ~problem
    return plan.with_columns(
        operators=pl.when(resolved)
        .then(pair.replace_strict(operators, default=pl.col("operators"), return_dtype=pl.String))
        .otherwise("operators"),
        department=pl.when(resolved)
        .then(
            pair.replace_strict(departments, default=pl.col("department"), return_dtype=pl.String)
        )
        .otherwise("department"),
        status=pl.when(problem).then(pl.lit(str(RowStatus.INVALID))).otherwise("status"),
        error_code=pl.when(problem)
        .then(pair.replace_strict({k: str(p.code) for k, p in problems.items()}, default=None))
        .otherwise("error_code"),
        error_message=pl.when(problem)
        .then(pair.replace_strict({k: str(p) for k, p in problems.items()}, default=None))
        .otherwise("error_message"),
    )


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


def assign_pool(plan: pl.DataFrame, pool: tuple[str, ...], distribute: str) -> pl.DataFrame:
    """Rows without operators get one pool member each.

    ``round-robin`` takes members in turn; ``balanced`` gives each row to the member with the
    fewest rows so far, counting the rows that already name pool members (ties: pool order).
    """
    empty = plan.select(PENDING & (pl.col("operators") == "")).to_series().arg_true()
    if not pool or empty.is_empty():
        return plan
    if distribute == "balanced":
        load = Counter({member: 0 for member in pool})
        named = plan.filter(PENDING & (pl.col("operators") != "")).group_by("operators").len()
        for key, count in named.iter_rows():
            for op in operators_of(key):
                if op in load:
                    load[op] += count
        members = []
        for _ in range(len(empty)):
            member = min(pool, key=lambda m: load[m])  # min keeps the first of equals
            load[member] += 1
            members.append(member)
    else:
        members = [pool[turn % len(pool)] for turn in range(len(empty))]
    keys = pl.Series([operators_key((m,)) for m in members], dtype=pl.String)
    return plan.with_columns(plan.get_column("operators").clone().scatter(empty, keys))
