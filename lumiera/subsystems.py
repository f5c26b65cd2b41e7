"""The subsystems, their layers and dependencies, and which ones a command line starts.

Declared order matters: prerequisites start depth-first in the order given
here, and subsystems are stopped in the reverse of the order they started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Options:
    """What the command line of ``lumiera up`` asks for."""

    session: str | None = None
    headless: bool = False
    scripts: tuple[str, ...] = ()
    port: int | None = None  # the render node's worker port (0: any free one)
    debug: str | None = None
    join: str | None = None  # the Dask scheduler a render node joins (tcp://HOST:PORT)

    @property
    def node(self) -> bool:
        """Whether this instance is a render node (``--port`` or ``--join``)."""
        return self.port is not None or self.join is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "session": self.session,
            "headless": self.headless,
            "scripts": list(self.scripts),
            "port": self.port,
            "debug": self.debug,
            "join": self.join,
        }


@dataclass(frozen=True)
class Spec:
    """One subsystem: where its actor lives and what it needs."""

    name: str
    layer: str
    module: str
    depends: tuple[str, ...] = ()
    # Whether the command line asks for this subsystem itself. Dependencies
    # start because they are needed, whatever this says.
    should_start: Callable[[Options], bool] = field(default=lambda _o: False)
    doc: str = ""


SUBSYSTEMS: Mapping[str, Spec] = {
    s.name: s
    for s in (
        Spec(
            "engine",
            "vault",
            "lumiera.vault.engine",
            should_start=lambda o: o.headless,
            doc="render jobs, scheduler, media I/O",
        ),
        Spec(
            "session",
            "steam",
            "lumiera.steam.session",
            should_start=lambda o: o.headless,
            doc="session model, command dispatcher, journal",
        ),
        Spec(
            "player",
            "steam",
            "lumiera.steam.player",
            depends=("engine", "session"),
            should_start=lambda o: o.headless,
            doc="calculation streams, outputs",
        ),
        Spec(
            "gui",
            "stage",
            "lumiera.stage.gui",
            depends=("session", "player"),
            should_start=lambda o: not o.headless and not o.node,
            doc="UI backbone, GUI notification facade",
        ),
        Spec(
            "script",
            "stage",
            "lumiera.stage.script",
            depends=("session", "player"),
            should_start=lambda o: bool(o.scripts),
            doc="runs the user's scripts, then ends",
        ),
        Spec(
            "netnode",
            "vault",
            "lumiera.vault.netnode",
            # Its tasks render with this instance's player (and so its engine).
            depends=("engine", "session", "player"),
            should_start=lambda o: o.node,
            doc="render node of a distributed engine (a Dask worker)",
        ),
    )
}


def start_order(options: Options, table: Mapping[str, Spec] = SUBSYSTEMS) -> list[str]:
    """The subsystems to start, prerequisites first, depth-first in declared order."""
    return resolve([n for n, s in table.items() if s.should_start(options)], table)


def resolve(roots: Iterable[str], table: Mapping[str, Spec]) -> list[str]:
    """Roots and everything they depend on, each after its prerequisites.

    Raises ValueError for an unknown name or a dependency cycle.
    """
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"dependency cycle: {' -> '.join([*visiting, name])}")
        if name not in table:
            raise ValueError(f"unknown subsystem {name!r}")
        visiting.append(name)
        for dep in table[name].depends:
            visit(dep)
        visiting.pop()
        order.append(name)

    for root in roots:
        visit(root)
    return order
