"""Exit codes of every lumiera process, beside the errors (:mod:`lumiera.errors`) they report.

docs/PROTOCOL.md, section 14, says which code each command and process uses
when; the README lists those of ``lumiera up`` and the tools. The values
follow upstream Lumiera (0-3) and BSD ``sysexits.h`` (64 and up).
"""

from __future__ import annotations

# `lumiera up` (upstream Lumiera's codes)
EXIT_OK = 0
EXIT_ERROR = 1  # an orderly end after an error; for the tools: an error reply
EXIT_EMERGENCY = 2  # an emergency exit, every survivor ended by itself
EXIT_EMERGENCY_FAILED = 3  # an emergency exit, a survivor had to be killed

# the command line and the tools (sysexits.h)
EXIT_USAGE = 64  # EX_USAGE: a bad option or configuration value, before anything ran
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no instance running, or no reply in time
EXIT_INSTANCE_RUNNING = 73  # EX_CANTCREAT: `up` found the instance already running
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C before the supervisor could stop in order

# a subsystem process (lumiera.actors.process)
EXIT_CRASH = 70  # EX_SOFTWARE: an uncaught exception, or no welcome from the supervisor
EXIT_NO_SUPERVISOR = 71  # the supervisor went away


def stop_signals(*signals: int) -> list[int]:
    """The signals a command line stops on, of ``signals`` (default SIGINT, SIGTERM, SIGHUP):
    all but a SIGHUP it was started with ignored (``nohup`` asked for the hang-up to be
    ignored). It then exits 128 + the signal (docs/PROTOCOL.md, section 14)."""
    import signal

    chosen = signals or (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    return [s for s in chosen if not (s == signal.SIGHUP and signal.getsignal(s) is signal.SIG_IGN)]
