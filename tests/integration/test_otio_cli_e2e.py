"""``lumiera session export|import`` on real session files and real media (OpenTimelineIO)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lumiera.steam.core import SessionCore
from lumiera.testing import run_cli
from tests.support import write_audio_only
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration

EXIT_ERROR, EXIT_USAGE = 1, 64


def make_session(where: Path) -> Path:
    """``cut.lumiera``: two video tracks and an audio track, a gap, a crossfade, gains."""
    m1 = write_video(where / "m1.mkv", 40, "ffv1")
    m2 = write_video(where / "m2.mkv", 30, "ffv1", first=100)
    sound = write_audio_only(where / "sound.wav")
    session = where / "cut.lumiera"
    commands: list[tuple[str, dict[str, Any]]] = [
        ("set_output", {"width": 64, "height": 48, "rate": "25", "audio_rate": 8000}),
        ("add_media", {"path": str(m1)}),
        ("add_media", {"path": str(m2)}),
        ("add_media", {"path": str(sound)}),
        ("add_track", {"name": "V1"}),
        ("add_track", {"name": "V2"}),
        ("add_track", {"name": "A1", "kind": "audio"}),
        ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 20}),
        ("add_clip", {"media": "m2", "track": "t1", "position": 20, "source_in": 6}),
        ("add_transition", {"a": "c1", "b": "c2", "length": 5, "curve": "equal_power"}),
        ("add_clip", {"media": "m1", "track": "t2", "position": 50, "opacity": 0.5}),
        ("add_clip", {"media": "m3", "track": "t3", "position": 3, "gain_db": -6.0}),
    ]
    core = SessionCore(session)
    try:
        for command, args in commands:
            core.execute(command, args)
    finally:
        core.close()
    return session


def described(session: Path) -> dict[str, Any]:
    core = SessionCore(session)
    try:
        data = core.session.to_data()
    finally:
        core.close()
    del data["revision"]
    return data


def test_export_import_export_round_trip(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    first = tmp_path / "cut.otio"
    done = run_cli("session", "export", str(session), str(first))
    assert done.returncode == 0, done.stderr
    assert "3 tracks, 4 clips, 1 transitions" in done.stdout
    assert json.loads(first.read_text())["OTIO_SCHEMA"].startswith("Timeline")

    again = tmp_path / "again"
    again.mkdir()
    copy = again / "cut.lumiera"  # the same name: the timeline's name is the file's
    done = run_cli("session", "import", str(copy), str(first))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert described(copy) == described(session)

    second = again / "cut.otio"
    done = run_cli("session", "export", str(copy), str(second))
    assert done.returncode == 0, done.stderr
    assert second.read_text() == first.read_text()

    core = SessionCore(copy)  # every edit of the import is an ordinary, undoable command
    try:
        while core.history()["done"]:
            core.execute("undo", {})
        assert core.session.clips == {}
        assert core.session.media == {}
    finally:
        core.close()


def test_an_import_refuses_what_it_cannot_represent_unless_lossy(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    exported = tmp_path / "cut.otio"
    assert run_cli("session", "export", str(session), str(exported)).returncode == 0
    data = json.loads(exported.read_text())
    clip = data["tracks"]["children"][1]["children"][1]  # V2: gap, clip
    clip["effects"] = [
        {"OTIO_SCHEMA": "Effect.1", "name": "", "effect_name": "Blur", "metadata": {}}
    ]
    edited = tmp_path / "blur.otio"
    edited.write_text(json.dumps(data))
    target = tmp_path / "new.lumiera"

    done = run_cli("session", "import", str(target), str(edited))
    assert done.returncode == EXIT_ERROR
    assert "effect Blur" in done.stderr
    assert "nothing imported" in done.stderr
    assert not target.exists()

    done = run_cli("session", "import", str(target), str(edited), "--lossy")
    assert done.returncode == 0, done.stderr
    assert "effect Blur" in done.stderr
    assert described(target) == described(session)  # the effect was all it left out

    done = run_cli("session", "import", str(target), str(edited), "--lossy")
    assert done.returncode == EXIT_ERROR
    assert "--append" in done.stderr


def test_a_missing_media_file_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    exported = tmp_path / "cut.otio"
    assert run_cli("session", "export", str(session), str(exported)).returncode == 0
    (tmp_path / "m2.mkv").unlink()
    target = tmp_path / "new.lumiera"
    done = run_cli("session", "import", str(target), str(exported), "--lossy")
    assert done.returncode == EXIT_ERROR
    assert str(tmp_path / "m2.mkv") in done.stderr
    assert not target.exists()


def test_an_unknown_format_is_a_usage_error_listing_the_known(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    done = run_cli("session", "export", str(session), str(tmp_path / "cut.edl"))
    assert done.returncode == EXIT_USAGE
    assert ".otio (otio_json)" in done.stderr
    done = run_cli("session", "export", str(tmp_path / "none.lumiera"), str(tmp_path / "x.otio"))
    assert done.returncode == EXIT_USAGE
    assert not (tmp_path / "none.lumiera").exists()
