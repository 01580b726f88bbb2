"""The local stack's state folder holds the signing secret: it is kept from other users."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepwell.local import state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """A umask that lets others read what is created (as 022 does), so only the code's own
    modes can keep them out."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


SNAPSHOT = state.Snapshot(saved_at="2026-01-01T00:00:00+00:00", secrets={"Signing": "k" * 32})


def test_the_snapshot_is_written_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / ".stepwell"
    path = state.write(folder, SNAPSHOT)
    assert (mode(folder), mode(path)) == (0o700, 0o600)
    assert state.read(folder) == SNAPSHOT


def test_the_file_is_never_readable_by_others_even_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    rename = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        seen.append(mode(Path(source)))
        rename(source, target)

    monkeypatch.setattr(os, "replace", replace)
    folder = tmp_path / ".stepwell"
    folder.mkdir()
    (folder / f".{state.FILE}.{os.getpid()}.tmp").write_text("left by a crash")
    state.write(folder, SNAPSHOT)
    assert seen == [0o600]


def test_a_folder_an_older_version_left_open_is_closed_on_read(tmp_path: Path) -> None:
    folder = tmp_path / ".stepwell"
    state.write(folder, SNAPSHOT)
    folder.chmod(0o755)
    (folder / state.FILE).chmod(0o644)
    assert state.read(folder) == SNAPSHOT
    assert (mode(folder), mode(folder / state.FILE)) == (0o700, 0o600)


def test_a_shared_folder_is_left_as_it_is_and_the_file_still_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp: others' files live there too
    path = state.write(shared, SNAPSHOT)
    assert (mode(shared), mode(path)) == (0o1777, 0o600)
