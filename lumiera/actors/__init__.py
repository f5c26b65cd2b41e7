"""The subsystem runtime: the actor base class and the process that runs one.

- :mod:`.actor`: :class:`Actor`, the base of every subsystem's actor, and the
  ``@command`` declaration of its request handlers. Pure logic, no sockets.
- :mod:`.process`: the driver that runs one actor as a subsystem process:
  connects to the bus, says hello and READY, heartbeats, acks lifecycle events,
  answers requests, and reports an uncaught exception before exiting non-zero.
"""

from lumiera.actors.actor import Actor, ActorContext, command

__all__ = ["Actor", "ActorContext", "command"]
