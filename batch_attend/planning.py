"""Between validation and sending, decided once in input order: duplicates, pools, leads an
earlier run did, names resolved to IDs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batch_attend import sentences
from batch_attend.directory import Directory, LookupProblem
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import chat_keys, decide, pending, split_operators
from batch_attend.outcomes import ErrorCode, RowStatus
from batch_attend.settings import RequestOptions

DISTRIBUTIONS = ("round-robin", "balanced")


class PoolError(BatchAttendError):
    """The operator pool cannot be used (empty, unreadable, or a member that does not resolve)."""


def skip_duplicates(plan: pd.DataFrame) -> pd.DataFrame:
    """Later rows of a chat already planned (or carried over, first wherever it stands) are
    ``skipped``: PlugChat keeps one attendance per chat, a second start could only race it."""
    phones = plan["phone"][pending(plan) | plan["carried"]]
    keys = chat_keys(phones)  # a mobile with and without its ninth digit: one chat
    twice = keys.duplicated(keep=False)  # the rows of a phone seen more than once: few
    if not twice.any():
        return plan
    keys, phones = keys[twice], phones[twice]
    carried_first = np.argsort(~plan["carried"][keys.index].to_numpy(), kind="stable")
    keys, phones = keys.iloc[carried_first], phones.iloc[carried_first]
    later = keys.duplicated()
    first_row = pd.Series(plan["row"][keys.index][~later].to_numpy(), index=keys[~later])
    first_phone = pd.Series(phones[~later].to_numpy(), index=keys[~later])
    row, other = keys[later].map(first_row), keys[later].map(first_phone)
    messages = sentences.fill(sentences.SAME_PHONE, row=row).where(
        other == phones[later],
        sentences.fill(sentences.SAME_MOBILE, row=row, other=other, phone=phones[later]),
    )
    rows = plan.index.isin(messages.index)
    return decide(plan, rows, RowStatus.SKIPPED, ErrorCode.DUPLICATE_ROW, messages)


def read_pool(requests: RequestOptions, directory: Directory | None) -> tuple[str, ...]:
    """Pool members from ``--pool A,B,C`` and/or a file (one per line, ``#`` comments), as IDs
    when a ``directory`` is there to resolve them."""
    if requests.distribute not in DISTRIBUTIONS:
        said = _("--distribute: '{value}' is not one of {choices}")
        raise PoolError(said.format(value=requests.distribute, choices=", ".join(DISTRIBUTIONS)))
    members = list(split_operators(requests.pool or ""))
    if requests.pool_file is not None:
        try:
            text = Path(requests.pool_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            said = _("{pool_file}: cannot read the pool file ({strerror}).")
            said = said.format(pool_file=requests.pool_file, strerror=exc.strerror)
            raise PoolError(said) from exc
        for line in text.splitlines():
            members.extend(split_operators(line.split("#", 1)[0]))
    pool = tuple(dict.fromkeys(members))
    if (requests.pool or requests.pool_file) and not pool:
        raise PoolError(_("the operator pool is empty; give IDs with --pool A,B or --pool-file"))
    if pool and requests.operators:
        raise PoolError(_("give --operator or --pool, not both: both fill empty operator cells"))
    if not pool or directory is None:
        return pool
    try:
        return tuple(dict.fromkeys(directory.operator_id(member) for member in pool))
    except LookupProblem as problem:
        said = sentences.render(str(problem))
        raise PoolError(_("--pool: {problem}").format(problem=said)) from problem


def assign_pool(plan: pd.DataFrame, pool: tuple[str, ...], distribute: str) -> pd.DataFrame:
    """Rows without operators get one pool member each, in input order: in turn, or
    (``balanced``) the one with the fewest rows so far, counting the rows naming them."""
    live = pending(plan)
    empty = plan.index[live & (plan["operators"].map(len) == 0)]
    if not pool or empty.empty:
        return plan
    if distribute == "balanced":
        load = Counter(dict.fromkeys(pool, 0))
        for operators in plan.loc[live, "operators"]:
            load.update(op for op in operators if op in load)
        members = []
        for _row in empty:
            member = min(pool, key=load.__getitem__)  # min keeps the first of equals
            load[member] += 1
            members.append((member,))
    else:
        members = [(pool[turn % len(pool)],) for turn in range(len(empty))]
    plan = plan.copy()
    plan.loc[empty, "operators"] = pd.Series(members, index=empty, dtype=object)
    return plan


def carry_over(plan: pd.DataFrame, done: Mapping[str, tuple], keys_of=None) -> pd.DataFrame:
    """Leads an earlier run did (``done``: phone → status, fingerprint) are not sent again: one
    row of each, ``carried``, keeps that run's outcome even if now invalid: the one sent, found by
    its fingerprint ``keys_of(index)`` however the sheet was sorted since, else the first."""
    if not done:
        return plan
    candidates = plan[
        (plan["phone"] != "") & (pending(plan) | (plan["status"] == RowStatus.INVALID))
    ]
    sent, keys = pd.Series(list(done), dtype=str), chat_keys(candidates["phone"])
    known = pa.array(chat_keys(sent))  # pandas' isin takes seconds for a million phones
    at = pc.index_in(pa.array(keys), value_set=known).fill_null(-1).to_numpy()  # in done, or -1
    first = (at >= 0) & ~keys.duplicated().to_numpy()
    several = np.flatnonzero((at >= 0) & keys.duplicated(keep=False).to_numpy())
    if keys_of is not None and several.size:  # the row sent, wherever it is now
        fingerprints = keys_of(candidates.index[several])
        for position, fingerprint in zip(several, fingerprints, strict=True):
            if fingerprint == done[sent.iat[at[position]]][1]:
                first[several[keys.iloc[several].to_numpy() == keys.iat[position]]] = False
                first[position] = True
    carried = pd.Series(first, index=candidates.index).reindex(plan.index, fill_value=False)
    plan = plan.assign(carried=carried)
    phones = sent.to_numpy()[at[first]]  # as done: the ledger's records are found by it
    plan.loc[carried, "phone"] = phones
    plan.loc[carried, "status"] = [done[phone][0] for phone in phones]
    plan.loc[carried, ["error_code", "error_message"]] = ""
    return plan


def resolve_names(plan: pd.DataFrame, directory: Directory) -> pd.DataFrame:
    """Operator and department cells turned into IDs, once per distinct pair; rows to send
    that do not resolve become ``invalid`` (a carried one is left naming no operators)."""
    live = (pending(plan) | plan["carried"]).to_numpy()
    op_codes, op_values = pd.factorize(plan["operators"][live].to_numpy(dtype=object))
    dep_codes, dep_values = pd.factorize(plan["department"][live])
    distinct, which = np.unique(op_codes * len(dep_values) + dep_codes, return_inverse=True)
    pairs = [(op_values[k // len(dep_values)], dep_values[k % len(dep_values)]) for k in distinct]
    answers = [_resolve(*pair, directory) for pair in pairs]
    if all(answer == (*pair, None) for pair, answer in zip(pairs, answers, strict=True)):
        return plan  # IDs already, as most sheets hold: nothing to rewrite
    index = plan.index[live]
    new = pd.DataFrame(answers, columns=["operators", "department", "problem"], dtype=object)
    new = new.iloc[which].set_axis(index)
    plan = plan.copy()
    plan.loc[index, "operators"] = new["operators"]
    plan.loc[index, "department"] = new["department"]
    problems = new["problem"][new["problem"].notna() & pending(plan)[index]]
    codes = problems.map(lambda problem: str(problem.code))
    rows = plan.index.isin(problems.index)
    return decide(plan, rows, RowStatus.INVALID, codes, problems.map(str))


def _resolve(operators: tuple, department: str, directory: Directory) -> tuple:
    """The IDs for one (operators, department) pair and None, or no operators and the problem."""
    try:
        ids = tuple(dict.fromkeys(directory.operator_id(value) for value in operators))
        return ids, directory.department_id(department) if department else "", None
    except LookupProblem as problem:
        return (), department, problem


def keep_online(plan: pd.DataFrame, pool: tuple[str, ...], states) -> tuple[pd.DataFrame, tuple]:
    """The pool members online now (none: a usage error), and a cell naming several operators
    keeps those online (none: ``skipped``, a later run sends it); one is sent as written."""
    online = {s.id for s in states if s.online}
    members = tuple(member for member in pool if member in online)
    if pool and not members:
        labels = {s.id: s.label for s in states}
        offline = ", ".join(labels.get(m, m) for m in pool)
        said = _(
            "--online-only: no pool member is online now ({offline} offline); nothing was sent."
        )
        raise PoolError(said.format(offline=offline))
    several = pending(plan) & (plan["operators"].map(len) > 1)
    kept = plan["operators"][several].map(lambda ops: tuple(op for op in ops if op in online))
    some = kept[kept.map(len) > 0]
    plan = plan.copy()
    plan.loc[some.index, "operators"] = pd.Series(list(some), index=some.index, dtype=object)
    none_online = plan.index.isin(kept.index[kept.map(len) == 0])
    code, message = ErrorCode.OPERATORS_OFFLINE, sentences.OPERATORS_OFFLINE
    return decide(plan, none_online, RowStatus.SKIPPED, code, message), members
