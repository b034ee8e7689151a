"""Files batch-attend writes beside the results: never through a link, with the owner's rights,
no leftovers of a killed run, and no cell an XLSX would cut."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile

import openpyxl
import pytest

from batch_attend.cli import cli
from tests.conftest import TOKEN, read_results_csv, write_csv

HEADER = ["Nome", "Telefone", "Operadores", "Notas"]
TWO = [["Ana", "(44) 99999-0001", "OP-ANA", ""], ["Bia", "(44) 99999-0002", "OP-BRUNO", ""]]
PRECIOUS = b"precious bytes, not a journal\n"
XLSX_CELL = 32_767


def invoke(runner, sandbox, *args):
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    return runner.invoke(cli, [str(a) for a in args], env=env)


def requests(sandbox) -> int:
    return sum(sandbox.state.requests.values())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def leads(tmp_path):
    return write_csv(tmp_path / "leads.csv", [HEADER, *TWO])


@pytest.fixture
def victim(tmp_path):
    """A file a planted link points to: it must come out byte for byte as it was."""
    path = tmp_path / "elsewhere" / "victim.bin"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


# A. The journal and its sidecars are never followed through a link.


@pytest.mark.parametrize("fresh", [False, True], ids=["resume", "fresh"])
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_a_linked_journal_or_sidecar_is_refused_and_its_target_kept(
    runner, sandbox, tmp_path, leads, victim, suffix, fresh
):
    out = tmp_path / "r.csv"
    if suffix:  # a real journal, left by an earlier run, with one sidecar planted as a link
        assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    link = tmp_path / f"r.csv.journal{suffix}"
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    before = sorted(p.name for p in tmp_path.iterdir())
    sent = requests(sandbox)
    result = invoke(runner, sandbox, leads, "-o", out, *(["--fresh"] if fresh else []))
    assert result.exit_code == 2, result.output
    assert f"{link}: " in result.stderr
    assert "batch-attend does not write through links" in result.stderr
    assert victim.read_bytes() == PRECIOUS
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing moved aside
    assert requests(sandbox) == sent


def test_nothing_but_the_journal_is_left_beside_the_results(
    runner, sandbox, tmp_path, leads, victim
):
    """No lock file: the run holds the ledger itself. An earlier version's lock file (a link,
    here) goes without its target being touched."""
    out = tmp_path / "r.csv"
    (tmp_path / "r.csv.journal.lock").symlink_to(victim)
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [leads.name, "r.csv", "r.csv.journal", "elsewhere"]
    )
    assert victim.read_bytes() == PRECIOUS


@pytest.mark.parametrize("fresh", [False, True], ids=["resume", "fresh"])
def test_a_journal_linked_to_an_empty_file_leaves_it_empty(runner, sandbox, tmp_path, fresh):
    """SQLite takes an empty file for an empty database: the link's target would become one."""
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *TWO])
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    (tmp_path / "r.csv.journal").symlink_to(empty)
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv", *(["--fresh"] * fresh))
    assert result.exit_code == 2 and "does not write through links" in result.stderr
    assert empty.read_bytes() == b"" and requests(sandbox) == 0


def test_a_dangling_journal_link_creates_nothing(runner, sandbox, tmp_path, leads):
    missing = tmp_path / "elsewhere" / "journal.db"
    missing.parent.mkdir()
    (tmp_path / "r.csv.journal").symlink_to(missing)
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv", "--fresh")
    assert result.exit_code == 2 and "does not write through links" in result.stderr
    assert not os.path.lexists(missing)


@pytest.mark.parametrize("command", [["--dry-run"], ["check"]], ids=["dry-run", "check"])
def test_reading_the_journal_through_a_link_is_refused(
    runner, sandbox, tmp_path, leads, victim, command
):
    out = tmp_path / "r.csv"
    (tmp_path / "r.csv.journal").symlink_to(victim)
    args = [*command, leads, "-o", out] if command == ["check"] else [leads, "-o", out, *command]
    result = invoke(runner, sandbox, *args)
    assert result.exit_code == 2 and "does not write through links" in result.stderr
    assert victim.read_bytes() == PRECIOUS


# B. Temp files: unique, recognisable, never a planted link.


def test_temp_files_have_a_distinctive_unique_name(runner, sandbox, tmp_path, leads, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        replaced.append((str(src), str(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    out, summary = tmp_path / "r.csv", tmp_path / "s.json"
    result = invoke(runner, sandbox, leads, "-o", out, "--summary-json", summary)
    assert result.exit_code == 0, result.stderr
    temps = {os.path.basename(dst): src for src, dst in replaced}
    for name in ("r.csv", "s.json"):
        assert os.path.dirname(temps[name]) == str(tmp_path)
        pattern = rf"\.{re.escape(name)}\.[a-z0-9_]+\.batch-attend\.tmp"
        assert re.fullmatch(pattern, os.path.basename(temps[name])), temps[name]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_every_file_is_on_disk_before_it_takes_its_name(
    runner, sandbox, tmp_path, leads, monkeypatch
):
    synced, replaced = set(), []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.add(os.fstat(fd).st_ino)
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        replaced.append((os.path.basename(dst), os.stat(src).st_ino in synced))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    out, summary = tmp_path / "r.xlsx", tmp_path / "s.json"
    assert invoke(runner, sandbox, leads, "-o", out, "--summary-json", summary).exit_code == 0
    assert sorted(replaced) == [("r.xlsx", True), ("s.json", True)]


def test_a_page_run_file_cut_off_while_written_leaves_the_one_before(tmp_path, monkeypatch):
    from pathlib import Path

    from batch_attend.web.runs import RunStore

    store = RunStore(tmp_path)
    run = store.new("leads.csv", ".csv")
    real_write_text = Path.write_text

    def cut_off(self, text, *args, **kwargs):
        real_write_text(self, text[:5], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", cut_off)
    run.status = {"state": "running"}
    with pytest.raises(OSError):
        store.save(run)
    monkeypatch.undo()
    assert sorted(p.name for p in run.folder.iterdir()) == ["options.json", "status.json"]
    assert store.get(run.id).status["state"] == "new"


def test_the_summary_never_writes_through_a_planted_link(runner, sandbox, tmp_path, leads, victim):
    planted = ["s.json.tmp", ".s.json.tmp", ".s.json.abcd1234.tmp"]
    planted.append(".s.json.abcd1234.batch-attend.tmp")
    for name in planted:
        (tmp_path / name).symlink_to(victim)
    summary = tmp_path / "s.json"
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv", "--summary-json", summary)
    assert result.exit_code == 0, result.stderr
    assert json.loads(summary.read_text("utf-8"))["exit_code"] == 0
    assert victim.read_bytes() == PRECIOUS
    for name in planted:
        assert (tmp_path / name).is_symlink() and os.readlink(tmp_path / name) == str(victim)


def test_a_summary_path_that_is_a_link_is_replaced_not_written_through(
    runner, sandbox, tmp_path, leads, victim
):
    summary = tmp_path / "s.json"
    summary.symlink_to(victim)
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv", "--summary-json", summary)
    assert result.exit_code == 0, result.stderr
    assert victim.read_bytes() == PRECIOUS
    assert not summary.is_symlink() and json.loads(summary.read_text("utf-8"))["rows"] == 2


# C. A new file gets the umask's rights, an existing one keeps its own.


def test_new_files_get_the_umasks_rights(runner, sandbox, tmp_path, leads, umask):
    umask(0o077)
    out, summary = tmp_path / "r.csv", tmp_path / "s.json"
    assert invoke(runner, sandbox, leads, "-o", out, "--summary-json", summary).exit_code == 0
    assert mode(out) == mode(summary) == 0o600
    umask(0o022)
    out, summary = tmp_path / "r2.csv", tmp_path / "s2.json"
    assert invoke(runner, sandbox, leads, "-o", out, "--summary-json", summary).exit_code == 0
    assert mode(out) == mode(summary) == 0o644


@pytest.mark.parametrize("ext", [".csv", ".xlsx"])
def test_an_existing_file_keeps_its_mode(runner, sandbox, tmp_path, leads, umask, ext):
    umask(0o022)
    out, summary = tmp_path / f"r{ext}", tmp_path / "s.json"
    for path in (out, summary):
        path.write_bytes(b"")
        path.chmod(0o600)
    assert invoke(runner, sandbox, leads, "-o", out, "--summary-json", summary).exit_code == 0
    assert out.stat().st_size > 0 and summary.stat().st_size > 0
    assert mode(out) == mode(summary) == 0o600


def test_a_template_written_over_keeps_its_mode(runner, sandbox, tmp_path, umask):
    umask(0o022)
    path = tmp_path / "leads.xlsx"
    path.write_bytes(b"mine")
    path.chmod(0o600)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    result = runner.invoke(cli, ["template", str(path), "--force"], env=env)
    assert result.exit_code == 0, result.stderr
    assert openpyxl.load_workbook(path).sheetnames and mode(path) == 0o600


# D. A run removes what a killed run left of the same results, and nothing else.


def test_leftovers_of_the_same_results_are_removed(runner, sandbox, tmp_path, leads, victim):
    fd, leftover = tempfile.mkstemp(dir=tmp_path, prefix=".r.csv.", suffix=".batch-attend.tmp")
    os.write(fd, b"half a results file")
    os.close(fd)
    link = tmp_path / ".r.csv.zz9pl8ar.batch-attend.tmp"
    link.symlink_to(victim)
    kept = [
        ".other.csv.x.batch-attend.tmp",
        "r.csv.tmp",
        ".r.csv.old.x.batch-attend.tmp",  # a leftover of r.csv.old, not of r.csv
        ".r.csv.x.tmp",
    ]
    for name in kept:
        (tmp_path / name).write_bytes(b"not ours")
    (tmp_path / ".r.csv.folder.batch-attend.tmp").mkdir()
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv")
    assert result.exit_code == 0, result.stderr
    assert not os.path.lexists(leftover) and not os.path.lexists(link)
    assert victim.read_bytes() == PRECIOUS
    for name in kept:
        assert (tmp_path / name).read_bytes() == b"not ours"
    assert (tmp_path / ".r.csv.folder.batch-attend.tmp").is_dir()


# E. An XLSX cell holds at most 32,767 characters: a longer one is refused, not cut.


def test_a_cell_too_long_for_xlsx_is_refused_before_sending(runner, sandbox, tmp_path):
    rows = [TWO[0], ["Bia", "(44) 99999-0002", "OP-BRUNO", "x" * (XLSX_CELL + 1)]]
    leads = write_csv(tmp_path / "leads.csv", [HEADER, ["", "", "", ""], *rows])
    out = tmp_path / "r.xlsx"
    result = invoke(runner, sandbox, leads, "-o", out)
    assert result.exit_code == 2, result.output
    assert "row 4" in result.stderr and "'Notas'" in result.stderr
    assert ".csv" in result.stderr
    assert requests(sandbox) == 0 and not out.exists()


def test_a_cell_that_fits_xlsx_is_written_whole(runner, sandbox, tmp_path):
    full = "y" * XLSX_CELL
    leads = write_csv(tmp_path / "leads.csv", [HEADER, [*TWO[0][:3], full]])
    out = tmp_path / "r.xlsx"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    sheet = openpyxl.load_workbook(out, read_only=True)["Results"]
    rows = list(sheet.iter_rows(values_only=True))
    notes = rows[0].index("Notas")
    assert [row[notes] for row in rows[1:]] == [full]


def test_csv_results_keep_a_long_cell_whole(runner, sandbox, tmp_path):
    long = "z" * (XLSX_CELL * 3)
    leads = write_csv(tmp_path / "leads.csv", [HEADER, [*TWO[0][:3], long]])
    out = tmp_path / "r.csv"
    result = invoke(runner, sandbox, leads, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [r["Notas"] for r in read_results_csv(out)] == [long]
