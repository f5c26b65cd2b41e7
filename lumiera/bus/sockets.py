"""Socket helpers shared by the supervisor, the subsystems and the tools."""

from __future__ import annotations

import zmq

from lumiera.bus.codec import Limits


def configure_bounded(sock: zmq.Socket[bytes], limits: Limits) -> None:
    """Drop (and disconnect) any peer that sends a frame over the size limit."""
    sock.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes)
    sock.setsockopt(zmq.LINGER, 0)


def recv_bounded(sock: zmq.Socket[bytes], max_parts: int) -> tuple[list[bytes], int]:
    """Receive one multipart message, keeping at most ``max_parts`` frames.

    Returns (frames kept, frames received in all); the rest are read and
    discarded so one message of a million frames cannot fill our memory.
    Call only when the socket is readable.
    """
    frames = [sock.recv()]
    total = 1
    while sock.getsockopt(zmq.RCVMORE):
        frame = sock.recv()
        total += 1
        if len(frames) < max_parts:
            frames.append(frame)
    return frames, total
