"""AppState, the root supervisor: which subsystems run, in what order, and how they end.

- :mod:`.subsystems`: the table of subsystems, their layers and dependencies.
- :mod:`.runner`: the supervisor's rules as a state machine, without sockets.
- :mod:`.children`: spawning and watching subsystem processes.
- :mod:`.supervisor`: the driver: sockets, the poll loop, and the runner's actions.
"""
