"""Inspect a frame ring of a running instance, read-only: header, consumers, fill level.

    python tools/ring.py NAME [--instance I] [--runtime-dir DIR] [--json] [--watch SECONDS]

Attaches to the ring's shared-memory segment read-only (it never writes, never
unlinks, and, not being Python's SharedMemory, never registers the segment
with a resource tracker), prints what the header and the consumer table say,
and exits. ``--watch`` prints again every SECONDS until Ctrl-C. Exit 0, or 69
when the instance or the ring is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from lumiera import runtime_dir, shm
from lumiera.exits import EXIT_UNAVAILABLE
from lumiera.shm.inspect import describe
from lumiera.shm.layout import HEADER_SIZE, Header
from lumiera.shm.segment import Segment, SegmentError


def render(info: dict[str, Any], header: Header) -> str:
    lines = [
        f"ring {info['name']}  segment /dev/shm/{info['segment']}  "
        f"{info['size_bytes'] / 2**20:.1f} MiB",
        f"  layout v{header.version}  policy {info['policy']}  slots {info['slots']} x "
        f"{info['slot_bytes'] / 2**20:.2f} MiB  consumer entries {header.max_consumers}",
        f"  frames written {info['frames_written']}  fill {info['fill']}/{info['slots']}  "
        f"drops {info['drops']} (producer {info['producer_drops']})",
    ]
    if not info["consumers"]:
        lines.append("  no consumers attached")
    for c in info["consumers"]:
        state = "alive" if c["alive"] else "DEAD (entry not yet released)"
        behind = info["frames_written"] - c["released"]
        lines.append(
            f"  consumer {c['entry']}: pid {c['pid']} {state}, read {c['frames_read']}, "
            f"released up to {c['released']} ({behind} behind), drops {c['drops']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="ring name (see `lumiera status`)")
    p.add_argument("--instance", default="default")
    p.add_argument("--runtime-dir")
    p.add_argument("--json", action="store_true", help="one JSON object per look")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="look again every SECONDS")
    args = p.parse_args(argv)
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    if not runtime_dir.is_locked(rd):
        print(f"ring: no lumiera instance {rd.instance!r} is running at {rd.path}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        seg = Segment.attach(shm.segment_name(rd.instance, args.name), writable=False)
    except SegmentError as e:
        print(f"ring: {e} (instance {rd.instance!r})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        while True:
            try:
                header = Header.unpack(seg.buf[:HEADER_SIZE])
            except ValueError as e:
                print(f"ring: {seg.name}: {e}", file=sys.stderr)
                return 1
            info = describe(seg, args.name)
            print(json.dumps(info) if args.json else render(info, header), flush=True)
            if args.watch is None:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        seg.close()


if __name__ == "__main__":
    sys.exit(main())
