"""The farm's TLS: its settings from ``[farm] tls_*``, addresses that fit them, refused members.

Certificates are made here (:func:`make_pki`): a farm's CA, members signed by
it, and a member of another CA. The scheduler is a TLS ``LocalCluster`` in
this process; a node's Worker runs on its own loop thread, as in the netnode.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from distributed import Client, Security

from lumiera.actors import ActorContext
from lumiera.config import load as load_config
from lumiera.errors import ConfigError, Unavailable
from lumiera.vault import security
from lumiera.vault.daskworker import NodePlugin, NodeSettings, WorkerThread
from lumiera.vault.netnode import NetNodeActor
from tests.support import loopback_cluster

BOUND_S = 10.0

# -- certificates -----------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


@dataclass
class Pki:
    """A CA (its certificate in ``ca_file``) and the members it signed: PEM files in ``where``."""

    where: Path
    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(_name(self.name))
            .issuer_name(_name(self.name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self.where / f"{self.name}-ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def member(self, host: str, address: str = "127.0.0.1") -> tuple[Path, Path]:
        """A certificate for ``host`` (its name and address in subjectAltName) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address(address))]
        cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(_name(host))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.where / f"{host}.crt", self.where / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file

    def defs(self, host: str, ca: Path | None = None) -> list[str]:
        """``--def`` settings of a member ``host`` (trusting ``ca``, this CA unless told)."""
        cert, key = self.member(host)
        return [
            f"farm.tls_ca_file={ca or self.ca_file}",
            f"farm.tls_cert={cert}",
            f"farm.tls_key={key}",
        ]

    def security(self, host: str, ca: Path | None = None) -> Security:
        found = security.load(load_config(defs=self.defs(host, ca)))
        assert found is not None
        return found


def make_pki(where: Path) -> tuple[Pki, Pki]:
    """The farm's CA, and another CA (whose members the farm refuses)."""
    where.mkdir(parents=True, exist_ok=True)
    return Pki(where, "farm"), Pki(where, "other")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, Pki]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def farm(pki: tuple[Pki, Pki]) -> Pki:
    return pki[0]


@pytest.fixture(scope="module")
def other(pki: tuple[Pki, Pki]) -> Pki:
    return pki[1]


def config(*defs: str) -> Any:
    return load_config(defs=defs)


def tls_of(sec: Security | None, role: str = "worker") -> dict[str, Any]:
    """A Security's files for ``role``: ca_file, cert, key."""
    assert sec is not None
    found: dict[str, Any] = sec.get_tls_config_for_role(role)  # type: ignore[no-untyped-call]
    return found


# -- load() --------------------------------------------------------------------------------


def test_no_ca_file_is_no_tls():
    assert security.load(config()) is None


def test_the_same_certificate_serves_every_role_and_encryption_is_required(farm, tmp_path):
    defs = farm.defs("host-a")
    sec = security.load(config(*defs))
    assert sec is not None and sec.require_encryption is True
    ca, cert, key = (d.partition("=")[2] for d in defs)
    assert tls_of(sec)["ca_file"] == ca
    for role in security.ROLES:
        assert (tls_of(sec, role)["cert"], tls_of(sec, role)["key"]) == (cert, key)
        args = sec.get_connection_args(role)  # type: ignore[no-untyped-call]
        assert isinstance(args["ssl_context"], ssl.SSLContext)


def test_an_empty_key_means_the_key_is_in_the_certificate_file(farm, tmp_path):
    cert, key = farm.member("host-b")
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    sec = security.load(config(f"farm.tls_ca_file={farm.ca_file}", f"farm.tls_cert={both}"))
    assert tls_of(sec)["key"] is None and tls_of(sec)["cert"] == str(both)


def test_a_ca_without_a_certificate_is_refused_naming_what_is_missing(farm):
    with pytest.raises(ConfigError, match=re.escape("set without farm.tls_cert")):
        security.load(config(f"farm.tls_ca_file={farm.ca_file}"))


def test_a_certificate_or_key_without_the_ca_is_refused(farm):
    cert, key = farm.member("host-c")
    with pytest.raises(ConfigError, match=re.escape("farm.tls_cert set without farm.tls_ca_file")):
        security.load(config(f"farm.tls_cert={cert}"))
    with pytest.raises(ConfigError, match=re.escape("farm.tls_cert and farm.tls_key set without")):
        security.load(config(f"farm.tls_cert={cert}", f"farm.tls_key={key}"))


@pytest.mark.parametrize("which", ["tls_ca_file", "tls_cert", "tls_key"])
def test_a_file_that_is_not_there_is_refused_naming_the_key_and_the_path(farm, tmp_path, which):
    defs = dict(d.split("=", 1) for d in farm.defs("host-d"))
    missing = tmp_path / "nowhere.pem"
    defs[f"farm.{which}"] = str(missing)
    with pytest.raises(ConfigError) as caught:
        security.load(config(*(f"{k}={v}" for k, v in defs.items())))
    assert f"farm.{which} = {missing}: cannot read {missing}: No such file" in str(caught.value)


def test_a_file_that_cannot_be_read_is_refused(farm, tmp_path):
    cert, _ = farm.member("host-e")
    defs = (f"farm.tls_ca_file={farm.ca_file}", f"farm.tls_cert={cert}", f"farm.tls_key={tmp_path}")
    with pytest.raises(ConfigError) as caught:
        security.load(config(*defs))
    assert f"farm.tls_key = {tmp_path}: cannot read {tmp_path}: Is a directory" in str(caught.value)


def test_a_relative_path_is_taken_from_the_working_directory(farm, monkeypatch):
    monkeypatch.chdir(farm.where)
    cert, key = farm.member("host-f")
    relative = (f"tls_ca_file={farm.ca_file.name}", f"tls_cert={cert.name}", f"tls_key={key.name}")
    sec = security.load(config(*(f"farm.{d}" for d in relative)))
    assert tls_of(sec)["ca_file"] == str(farm.ca_file)


def test_files_that_are_not_what_their_keys_say_are_refused(farm, other, tmp_path):
    cert, _ = farm.member("host-g")
    _, wrong_key = other.member("host-g2")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(
        ConfigError, match=re.escape(f"farm.tls_ca_file = {junk}: not a PEM CA certificate")
    ):
        security.load(config(f"farm.tls_ca_file={junk}", f"farm.tls_cert={cert}"))
    with pytest.raises(
        ConfigError, match=re.escape(f"farm.tls_cert = {junk}: not a PEM certificate")
    ):
        security.load(config(f"farm.tls_ca_file={farm.ca_file}", f"farm.tls_cert={junk}"))
    mismatch = f"farm.tls_cert = {cert}, farm.tls_key = {wrong_key}: not a PEM certificate and"
    with pytest.raises(ConfigError, match=mismatch):
        security.load(
            config(
                f"farm.tls_ca_file={farm.ca_file}",
                f"farm.tls_cert={cert}",
                f"farm.tls_key={wrong_key}",
            )
        )


# -- check_address() -------------------------------------------------------------------------


def test_an_address_must_fit_the_tls_setting(farm):
    sec = farm.security("host-h")
    security.check_address("tcp://10.0.0.1:8786", None)
    security.check_address("tls://10.0.0.1:8786", sec)
    with pytest.raises(ConfigError) as caught:
        security.check_address("tls://10.0.0.1:8786", None)
    assert "tls://10.0.0.1:8786 is a TLS address, and TLS is not configured: set " in str(
        caught.value
    )
    assert "farm.tls_ca_file, farm.tls_cert and farm.tls_key" in str(caught.value)
    with pytest.raises(
        ConfigError, match=re.escape("encryption is required, use tls://10.0.0.1:8786")
    ):
        security.check_address("tcp://10.0.0.1:8786", sec)


def wrapped(error: BaseException) -> OSError:
    """A closed comm over ``error``, as Dask raises it (tornado's real_error, unchained)."""
    stream = OSError("Stream is closed")
    stream.real_error = error  # type: ignore[attr-defined]
    closed = OSError("in <TLS (closed)>")
    closed.__context__ = stream
    return closed


def test_explain_says_which_side_refused_and_nothing_for_other_failures():
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    said = security.explain(wrapped(verify))
    assert said == (
        "TLS handshake failed: this host does not trust the scheduler's certificate "
        "(not signed by the CA in farm.tls_ca_file: unable to get local issuer certificate)"
    )
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)")
    refused = (
        "TLS handshake failed: the scheduler refused this host's certificate "
        "(farm.tls_cert is not signed by the farm's CA: "
    )
    reason = "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca)"
    assert security.explain(wrapped(alert)) == refused + reason
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)")
    said = security.explain(wrapped(eof))
    assert said is not None and "refusing this host's certificate" in said
    assert "(farm.tls_cert not signed by the farm's CA?) or not speaking TLS" in said
    assert security.explain(wrapped(eof), trusted=True) == refused + (
        "EOF occurred in violation of protocol)"
    )
    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    said = security.explain(wrapped(plain))
    assert said is not None and said.endswith("does the scheduler at that address speak TLS?")
    assert security.explain(OSError("in <TLS (closed)>")) is None
    assert security.explain(TimeoutError("Timed out trying to connect")) is None


# -- against a TLS scheduler -----------------------------------------------------------------


def settings(scheduler: str, where: Path, sec: Security | None, join: float = 5.0) -> NodeSettings:
    return NodeSettings(scheduler, "127.0.0.1", 0, 1, "n1", str(where / "w"), join, sec)


def plugin(where: Path) -> NodePlugin:
    return NodePlugin("n1", "t1", str(where), str(where), 5.0)


def test_a_worker_with_the_farms_certificate_joins_a_tls_scheduler(farm, tmp_path):
    with loopback_cluster(farm.security("scheduler")) as c:
        assert c.scheduler_address.startswith("tls://127.0.0.1:")
        runner = WorkerThread(
            settings(c.scheduler_address, tmp_path, farm.security("n1")), plugin(tmp_path)
        )
        address = runner.start()
        try:
            assert address.startswith("tls://127.0.0.1:")
            with Client(
                c.scheduler_address, security=farm.security("me"), timeout=BOUND_S
            ) as client:  # type: ignore[no-untyped-call]
                assert list(client.scheduler_info(n_workers=-1)["workers"]) == [address]
                assert client.submit(sum, [1, 2], pure=False).result(timeout=BOUND_S) == 3
        finally:
            runner.stop(BOUND_S)


@pytest.mark.parametrize(
    ("trusts", "says"),
    [
        ("other", "this host does not trust the scheduler's certificate"),
        ("farm", "the scheduler refused this host's certificate (farm.tls_cert is not signed"),
    ],
)
def test_a_worker_of_another_ca_is_refused_at_once_saying_why(farm, other, tmp_path, trusts, says):
    ca = farm.ca_file if trusts == "farm" else other.ca_file
    with loopback_cluster(farm.security("scheduler")) as c:
        sec = other.security("intruder", ca=ca)
        runner = WorkerThread(settings(c.scheduler_address, tmp_path, sec), plugin(tmp_path))
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            runner.start()
        assert time.monotonic() - started < 3.0  # not the join timeout: the handshake says
        message = str(caught.value)
        assert message.startswith(
            f"cannot join the scheduler at {c.scheduler_address}: TLS handshake failed: "
        )
        assert says in message, message
        runner.stop(BOUND_S)
        assert runner.ended


def test_a_node_loads_tls_from_its_config_and_checks_the_scheduler_address(farm, tmp_path):
    def actor(join: str, *defs: str) -> NetNodeActor:
        ctx = ActorContext(
            name="netnode",
            instance="t1",
            config=config("netnode.join_timeout=5", *defs),
            options={"port": 0, "join": join},
            runtime_dir=str(tmp_path),
            temp_dir=str(tmp_path),
        )
        return NetNodeActor(ctx)

    defs = farm.defs("node")
    got = actor("tls://127.0.0.1:8786", *defs).settings()
    assert tls_of(got.security)["cert"] == defs[1].partition("=")[2]
    assert actor("tcp://127.0.0.1:8786").settings().security is None
    with pytest.raises(ConfigError, match=re.escape("TLS is not configured: set farm.tls_ca_file")):
        actor("tls://127.0.0.1:8786").settings()
    with pytest.raises(ConfigError, match=re.escape("encryption is required")):
        actor("tcp://127.0.0.1:8786", *defs).settings()


def test_a_client_without_the_farms_certificate_cannot_connect(farm, other):
    with loopback_cluster(farm.security("scheduler")) as c:
        for sec in (other.security("stranger"), other.security("stranger2", ca=farm.ca_file)):
            with pytest.raises(OSError) as caught:
                Client(c.scheduler_address, security=sec, timeout=5, set_as_default=False)  # type: ignore[no-untyped-call]
            said = security.explain(caught.value)
            assert said is not None and said.startswith("TLS handshake failed: "), caught.value
