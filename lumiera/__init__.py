"""lumiera: the application kernel of the Lumiera video editor.

A root supervisor (AppState) runs each subsystem (engine, session, player, gui,
script, netnode) as its own OS process, drives them through a lifecycle over a
ZeroMQ bus and takes everything down cleanly when one of them fails.

This module is imported by every subsystem process: keep it free of heavy imports.
"""

__version__ = "0.1.0"
