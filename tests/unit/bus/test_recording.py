"""The recording format (lumiera.bus.recording): written, read back, and bad files refused."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import msgpack
import pytest

from lumiera.bus import recording as r
from lumiera.errors import UsageError
from lumiera.runtime_dir import RuntimeDir


def _write(path: Path, events: int = 3) -> None:
    clock = itertools.count(100.0, 0.5).__next__
    head = r.header("inst", "/run/x", [""], started=1700000000.0, session_revision=0)
    with r.RecordingWriter(path, head, clock=clock) as w:
        for i in range(events):
            w.write("event", "session.changed", {"sender": "session", "ts": 1.0, "revision": i})
        w.write("request", "session", {"id": "a", "to": "session", "command": "undo", "args": {}})
        w.write("reply", "session", {"id": "a", "result": {"revision": 9}})


def test_a_recording_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    _write(path)
    rec = r.read_recording(path)
    assert rec.complete
    assert rec.header["format"] == "lumiera-recording" and rec.header["version"] == 1
    assert rec.header["instance"] == "inst" and rec.header["started"] == 1700000000.0
    assert rec.header["recorder"]["pid"] == os.getpid()
    assert [x.kind for x in rec.records] == ["event"] * 3 + ["request", "reply"]
    assert [x.t for x in rec.records] == [0.5, 1.0, 1.5, 2.0, 2.5]  # monotonic offsets
    assert rec.records[2].body["revision"] == 2
    assert rec.of_kind("request")[0].body["command"] == "undo"


def test_the_writer_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    path.write_text("mine")
    with pytest.raises(FileExistsError):
        r.RecordingWriter(path, r.header("i", "/x", []))
    assert path.read_text() == "mine"


def test_a_recording_without_its_end_is_read_but_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    w = r.RecordingWriter(path, r.header("i", "/x", []))
    w.write("event", "appstate.phase", {"phase": "running"})
    # the recorder was killed: no end record, but every object whole
    rec = r.read_recording(path)
    assert not rec.complete and len(rec.records) == 1
    w.close()


@pytest.mark.parametrize("cut", [1, 7, 33])
def test_a_truncated_recording_is_refused(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "rec"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    with pytest.raises(UsageError, match="truncated inside object"):
        r.read_recording(path)


def test_a_recording_cut_inside_its_header_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    _write(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(UsageError, match="not a lumiera recording"):
        r.read_recording(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"format": "lumiera-recording"}\n',
        b"\x89PNG\r\n\x1a\n\x00\x00",
        msgpack.packb({"format": "other", "version": 1}),
        msgpack.packb([1, 2, 3]),
    ],
    ids=["empty", "json", "png", "other-format", "array"],
)
def test_a_foreign_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "rec"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="not a lumiera recording"):
        r.read_recording(path)


def test_a_newer_version_is_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    path.write_bytes(msgpack.packb({**r.header("i", "/x", []), "version": 2}))
    with pytest.raises(UsageError, match="version 2 is newer than this lumiera reads"):
        r.read_recording(path)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"t": -1, "kind": "event", "topic": "x", "body": {}}, "time offset"),
        ({"t": 1, "kind": "gossip", "topic": "x", "body": {}}, "kind 'gossip'"),
        ({"t": 1, "kind": "event", "topic": "", "body": {}}, "topic"),
        ({"t": 1, "kind": "event", "topic": "x", "body": [1]}, "not a map"),
        ([1, 2], "list is not a map"),
    ],
)
def test_a_malformed_record_is_refused_naming_it(tmp_path: Path, record: object, why: str) -> None:
    path = tmp_path / "rec"
    path.write_bytes(msgpack.packb(r.header("i", "/x", [])) + msgpack.packb(record))
    with pytest.raises(UsageError, match=f"record 1: .*{why}"):
        r.read_recording(path)


def test_an_end_record_that_miscounts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    end = {"t": 1.0, "kind": "end", "records": 5}
    path.write_bytes(msgpack.packb(r.header("i", "/x", [])) + msgpack.packb(end))
    with pytest.raises(UsageError, match="end record counts 5"):
        r.read_recording(path)


def test_ext_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    ext = {"t": 1.0, "kind": "event", "topic": "x", "body": {"v": msgpack.ExtType(1, b"x")}}
    path.write_bytes(msgpack.packb(r.header("i", "/x", [])) + msgpack.packb(ext))
    with pytest.raises(UsageError, match="damaged at object 1"):
        r.read_recording(path)


def test_the_marker_names_a_running_recording_until_removed_and_a_dead_recorder_s_is_swept(
    tmp_path: Path,
) -> None:
    rd = RuntimeDir(tmp_path, "i", default_location=False)
    marker = r.write_marker(rd, tmp_path / "rec")
    assert marker.name == f"recording-{os.getpid()}"
    assert r.running_recordings(rd) == [tmp_path / "rec"]
    stale = r.marker_path(rd, pid=2**22 + 7)  # no such process: its recorder is gone
    stale.write_text("/old/rec\n")
    assert r.running_recordings(rd) == [tmp_path / "rec"]
    assert r.remove_dead_markers(rd) == [stale.name]  # the dead recorder's alone
    assert not stale.exists() and marker.exists()
    r.remove_marker(marker)
    assert r.running_recordings(rd) == []
    assert list(tmp_path.iterdir()) == []  # neither marker is left
