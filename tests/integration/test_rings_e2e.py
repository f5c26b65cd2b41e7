"""The supervisor owns the frame rings: creation, status, stats, dead consumers, cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lumiera import shm
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat
from lumiera.testing import Instance, Tap, run_cli, wait_for

pytestmark = pytest.mark.integration

RINGS = "rings.declared=viewer:drop:4:1, render:block:2:1"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "ring.py"


def where(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


def test_declared_rings_are_created_listed_and_published_then_removed_at_exit():
    with Instance(["--headless"], defs=[RINGS, "rings.stats_interval=0.1"]) as inst:
        st = inst.wait_running()
        assert [(r["name"], r["policy"], r["slots"]) for r in st["rings"]] == [
            ("viewer", "drop", 4),
            ("render", "block", 2),
        ]
        assert shm.list_segments(inst.rd.instance) == [
            shm.segment_name(inst.rd.instance, "render"),
            shm.segment_name(inst.rd.instance, "viewer"),
        ]
        tap = Tap(inst.rd, ["stats.viewer"])
        try:
            body = tap.wait_topic("stats.viewer", 5)
        finally:
            tap.close()
        assert body["name"] == "viewer" and body["slots"] == 4 and body["frames_written"] == 0
        assert run_cli("stop", *where(inst)).returncode == 0
        assert inst.wait() == 0
        assert shm.list_segments(inst.rd.instance) == []


def test_an_emergency_exit_leaves_no_ring_behind():
    with Instance(["--headless"], defs=[RINGS]) as inst:
        inst.wait_running()
        assert len(shm.list_segments(inst.rd.instance)) == 2
        os.kill(inst.pid_of("engine"), signal.SIGKILL)
        assert inst.wait() == 2
        assert shm.list_segments(inst.rd.instance) == []


def test_a_ring_too_large_for_dev_shm_is_a_clear_error_before_anything_starts():
    with Instance(["--headless"], defs=["rings.declared=huge:block:1024:4096"]) as inst:
        assert inst.wait() == 1
        out = inst.output()
        assert "cannot reserve" in out and "huge" in out
        assert "engine" not in out.split("cannot reserve")[0].split("\n")[-1]
        assert shm.list_segments(inst.rd.instance) == []
        assert not [p for p in inst.rd.path.iterdir() if p.is_socket()]


def test_create_ring_over_the_bus_and_a_duplicate_is_refused():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        args = {"name": "extra", "policy": "block", "slots": 2, "slot_mb": 1}
        made = inst.request("appstate", "create_ring", args)
        assert made["name"] == "extra" and made["policy"] == "block"
        assert [r["name"] for r in inst.status()["rings"]] == ["extra"]
        dup = run_cli("send", "appstate", "create_ring", json.dumps(args), *where(inst))
        assert dup.returncode == 1 and json.loads(dup.stdout)["error"]["code"] == "bad_args"
        bad = run_cli(
            "send", "appstate", "create_ring", '{"name": "x", "policy": "maybe"}', *where(inst)
        )
        assert json.loads(bad.stdout)["error"]["code"] == "bad_args"


CONSUMER = """
import sys, time
from lumiera.runtime_dir import RuntimeDir
from pathlib import Path
from lumiera.shm import ring
rd = RuntimeDir(Path(sys.argv[1]), sys.argv[2], False)
c = ring.Consumer(rd, "render")
frame = c.acquire(10)
print("holding", frame.seq, flush=True)
time.sleep(60)
"""


def test_a_sigkilled_consumer_does_not_block_the_producer_and_its_entry_is_released():
    with Instance(["--headless"], defs=[RINGS, "rings.stats_interval=0.1"]) as inst:
        inst.wait_running()
        producer = ring.Producer(inst.rd, "render", timeout=5)
        reader = subprocess.Popen(
            [sys.executable, "-c", CONSUMER, str(inst.rd.path), inst.rd.instance],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: inst.status()["rings"][1]["consumers"], 10, "the consumer attached")
            frame = np.zeros((16, 16, 3), np.uint8)
            assert producer.write(frame, PixelFormat.RGB24)
            assert reader.stdout is not None
            assert reader.stdout.readline().split() == ["holding", "1"]
            assert producer.write(frame, PixelFormat.RGB24)  # 2 slots: the second is free
            with pytest.raises(ring.RingTimeout, match="not released"):
                producer.write(frame, PixelFormat.RGB24, timeout=0.3)  # frame 1 is held
            reader.kill()
            reader.wait()
            assert producer.write(frame, PixelFormat.RGB24, timeout=5)  # the kernel freed its hold
            wait_for(lambda: not inst.status()["rings"][1]["consumers"], 5, "entry released")
        finally:
            producer.close()
            if reader.poll() is None:
                reader.kill()
                reader.wait()
            if reader.stdout is not None:
                reader.stdout.close()
        assert run_cli("stop", *where(inst)).returncode == 0
        assert inst.wait() == 0
        assert "released the hold of dead consumer" in inst.output()


def test_the_ring_inspector_shows_a_running_instances_ring():
    with Instance(["--headless"], defs=[RINGS]) as inst:
        inst.wait_running()
        with ring.Producer(inst.rd, "viewer") as producer:
            for k in range(3):
                producer.write(np.full((8, 8), k, np.uint8), PixelFormat.GRAY)
        out = subprocess.run(
            [sys.executable, str(TOOL), "viewer", *where(inst)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert "policy drop" in out.stdout and "frames written 3" in out.stdout
        missing = subprocess.run(
            [sys.executable, str(TOOL), "nosuch", *where(inst)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert missing.returncode == 69 and "no shared-memory segment" in missing.stderr
