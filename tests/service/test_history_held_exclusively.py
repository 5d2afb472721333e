"""The open history belongs to one process: no ``-shm`` file written behind every commit, readers
of the same process still read beside the writer, and another process is told "in use" (never
that the file is damaged, which would set it aside and start an empty history).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from filamentctl.core.reading import Reading
from filamentctl.errors import UserError
from filamentctl.store.history import History

OPEN_ELSEWHERE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from filamentctl.errors import UserError
    from filamentctl.store.history import History
    h = History(Path(sys.argv[1]), max_backlog=0, retention_days=0, recover_corrupt=True)
    try:
        h.open()
    except UserError as exc:
        print("refused:", exc)
        sys.exit(3)
    print("opened")
    h.close()
    """
)


def _history(path: Path, **kwargs: object) -> History:
    history = History(path, max_backlog=0, retention_days=0, **kwargs)  # type: ignore[arg-type]
    history.open()
    return history


def _add(history: History, n: int) -> None:
    for _ in range(n):
        history.add(Reading(time.time_ns(), history.next_seq(), 21.0, 40.0))
    history.commit()


def test_commits_write_no_shared_memory_file_and_readers_still_read(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    history = _history(path)
    try:
        _add(history, 5)
        with history.database.reader() as reader:
            reader.execute("BEGIN")
            (before,) = reader.execute("SELECT COUNT(*) FROM readings").fetchone()
            _add(history, 3)  # the writer goes on while the reader holds its snapshot
            assert reader.execute("SELECT COUNT(*) FROM readings").fetchone() == (before,)
            reader.execute("COMMIT")
            assert reader.execute("SELECT COUNT(*) FROM readings").fetchone() == (8,)
        assert path.with_name("history.db-wal").exists()
        assert not path.with_name("history.db-shm").exists()
    finally:
        history.close()


def test_another_process_is_told_in_use_and_nothing_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    history = _history(path)
    try:
        _add(history, 2)
        other = subprocess.run(
            [sys.executable, "-c", OPEN_ELSEWHERE, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 3, other.stdout + other.stderr
        assert "is in use by another process" in other.stdout
        assert sorted(p.name for p in tmp_path.iterdir()) == ["history.db", "history.db-wal"]
    finally:
        history.close()
    # Closed: the other process may open it now, and finds every reading.
    again = subprocess.run(
        [sys.executable, "-c", OPEN_ELSEWHERE, str(path)], capture_output=True, text=True
    )
    assert again.stdout.strip() == "opened", again.stderr
    reopened = _history(path)
    try:
        assert len(reopened.query(None)) == 2
    finally:
        reopened.close()


def test_a_history_held_by_another_process_is_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from filamentctl.store.history import History\n"
            "h = History(Path(sys.argv[1]), max_backlog=0, retention_days=0)\n"
            "h.open(); print('held', flush=True); time.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match="in use by another process"):
            _history(path, recover_corrupt=True)
        assert not list(tmp_path.glob("history.db.corrupt-*"))
    finally:
        holder.kill()
        holder.wait()
