"""A farm that speaks TLS: render nodes and clients with the farm's certificates, and strangers.

The scheduler is a TLS ``distributed.LocalCluster`` in this process (its
certificate signed by the farm's CA); the render nodes are real instances
(``lumiera up --headless --port 0 --join tls://...``) and the client the real
``lumiera render --farm tls://...``, each given its own certificate with
``--def farm.tls_*``. Certificates are made per module
(:func:`tests.unit.vault.test_security.make_pki`): the farm's CA, and another
CA whose members the farm must refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from lumiera.testing import Instance, run_cli, unique_runtime_dir
from tests.integration.farmkit import EXPECTED, codes, decoded, render, write_session
from tests.support import loopback_cluster, stop
from tests.unit.vault.test_security import Pki, make_pki

pytestmark = pytest.mark.integration

EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 64, 69


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, Pki]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-clip session file (the media beside it)."""
    return write_session(tmp_path_factory.mktemp("farm"))


@pytest.fixture
def scheduler(pki: tuple[Pki, Pki]) -> Iterator[str]:
    """A TLS scheduler on loopback, in this process, with the farm's certificate."""
    farm, _ = pki
    with loopback_cluster(farm.security("scheduler")) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        yield cluster.scheduler_address


def node(scheduler: str, defs: list[str], *more: str) -> Instance:
    """A render node joining ``scheduler`` (an Instance: start it with ``with``)."""
    return Instance(["--headless", "--port", "0", "--join", scheduler], defs=[*defs, *more])


def describe(inst: Instance) -> dict[str, Any]:
    result: dict[str, Any] = inst.request("netnode", "describe")
    return result


def flags(defs: list[str]) -> list[str]:
    return [arg for d in defs for arg in ("--def", d)]


def test_a_node_with_the_farms_certificate_joins_and_renders_for_a_client_with_one(
    pki, scheduler, session, tmp_path
):
    farm, other = pki
    with node(scheduler, farm.defs("node-a")) as a:
        a.wait_running()
        state = describe(a)
        assert state["tls"] is True and state["worker"].startswith("tls://127.0.0.1:")
        with Client(scheduler, security=farm.security("test"), timeout=10) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(1, timeout=10)
        out = tmp_path / "out.mkv"
        done = render(
            str(session),
            "-o",
            str(out),
            "--codec",
            "ffv1",
            "--farm",
            scheduler,
            "--segment-frames",
            "15",
            *flags(farm.defs("origin")),
        )
        assert done.returncode == 0, done.stderr
        frames, _, _ = decoded(out)
        assert codes(frames) == EXPECTED
        assert describe(a)["tasks"]["ran"] >= 3  # its segments came over TLS

        # A client whose certificate the farm's CA did not sign cannot connect, whichever
        # CA it trusts; one without TLS is told what to set before it tries.
        for ca in (other.ca_file, farm.ca_file):
            stranger = tmp_path / f"stranger-{ca.stem}.mkv"
            done = render(
                str(session), "-o", str(stranger), "--farm", scheduler,
                *flags(other.defs("stranger", ca=ca)),
            )  # fmt: skip
            assert done.returncode == EXIT_UNAVAILABLE, done.stderr
            assert f"cannot reach the scheduler at {scheduler}" in done.stderr
            assert not stranger.exists()
        done = render(str(session), "-o", str(tmp_path / "plain.mkv"), "--farm", scheduler)
        assert done.returncode == EXIT_USAGE, done.stderr
        assert "is a TLS address, and TLS is not configured: set farm.tls_ca_file" in done.stderr
        stop(a)


@pytest.mark.parametrize(
    ("trusts", "says"),
    [
        ("other", "this host does not trust the scheduler's certificate"),
        ("farm", "the scheduler refused this host's certificate (farm.tls_cert is not signed"),
    ],
)
def test_a_node_whose_certificate_another_ca_signed_is_refused_naming_the_scheduler(
    pki, scheduler, trusts, says
):
    farm, other = pki
    ca = farm.ca_file if trusts == "farm" else other.ca_file
    with node(scheduler, other.defs(f"intruder-{trusts}", ca=ca)) as a:
        assert a.wait(timeout=30) == EXIT_ERROR, a.output()
        output = a.output()
        assert f"cannot join the scheduler at {scheduler}: TLS handshake failed: " in output
        assert says in output, output


def test_a_node_without_tls_given_a_tls_address_is_refused_before_anything_is_spawned(pki):
    farm, _ = pki
    for address, defs in [
        ("tls://127.0.0.1:8786", []),
        ("tcp://127.0.0.1:8786", farm.defs("plain")),
    ]:
        rd = unique_runtime_dir()
        where = ["--instance", rd.instance, "--runtime-dir", str(rd.path)]
        done = run_cli("up", "--headless", "--port", "0", "--join", address, *flags(defs), *where)
        assert done.returncode == EXIT_USAGE, done.stderr
        assert f"{address} is " in done.stderr and "farm.tls_ca_file" in done.stderr
        rd.path.rmdir()  # nothing was spawned, nothing made in it
