"""TLS for the render farm: who may be a scheduler, a render node or a client of it.

The model is one certificate authority per farm. Every member (the scheduler's
host, each render node's host, each host a render is started from) has a
certificate of its own, signed by that CA, and its private key; each reads
``[farm] tls_ca_file`` (the CA's certificate), ``tls_cert`` and ``tls_key``
(empty: the key is in ``tls_cert``'s file) from its setup. Dask's TLS
(:class:`distributed.Security`) then authenticates both ends of every
connection: a member trusts only certificates the farm's CA signed, and
presents its own. A node or a client whose certificate that CA did not sign
(or that has none) is refused at the TLS handshake, before it can say anything
to the scheduler; so is a scheduler not signed by the CA a member trusts.

Dask does not check host names against a certificate (``check_hostname`` is
off: a farm's members are often reached by IP address); the CA is the trust.
The same certificate serves every role of a host (scheduler, worker, client),
and encryption is required: a ``tls://`` address needs these keys, and a
``tcp://`` address is refused while they are set (:func:`check_address`), so a
configured host never talks to the farm in the clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from distributed import Security

from lumiera.config import Config
from lumiera.errors import ConfigError


class Refused(ConnectionError):
    """The scheduler and this host did not agree at the TLS handshake (:func:`explain`)."""


KEYS = ("farm.tls_ca_file", "farm.tls_cert", "farm.tls_key")
ROLES = ("client", "scheduler", "worker")


def _readable(config: Config, key: str) -> str | None:
    """The absolute path of ``key``'s file (None: empty); ConfigError if it cannot be read."""
    text = config.get_str(key)
    if not text:
        return None
    path = Path(text).expanduser().absolute()
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(f"{key} = {text}: cannot read {path}: {reason}") from None
    return str(path)


def load(config: Config) -> Security | None:
    """The farm's TLS settings from ``[farm] tls_*``; None when ``tls_ca_file`` is empty.

    ConfigError, naming the key and the path, for a partial setting (a CA
    without this host's certificate, or a certificate or key without the CA),
    a file that does not exist or cannot be read, or one that is not what its
    key says (a PEM certificate, a key that matches the certificate).
    """
    ca, cert, key = (_readable(config, k) for k in KEYS)
    if ca is None:
        given = [k for k, v in zip(KEYS[1:], (cert, key), strict=True) if v is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} set without farm.tls_ca_file: TLS needs the farm's "
                "CA certificate too (or clear them all for no TLS)"
            )
        return None
    if cert is None:
        raise ConfigError(
            f"farm.tls_ca_file = {ca} set without farm.tls_cert: TLS needs this host's "
            "certificate (signed by that CA) and its key (farm.tls_key)"
        )
    _check_pem(ca, cert, key)
    paths: dict[str, str | None] = {"tls_ca_file": ca}
    for role in ROLES:
        paths[f"tls_{role}_cert"] = cert
        paths[f"tls_{role}_key"] = key
    return Security(require_encryption=True, **paths)  # type: ignore[no-untyped-call]


def _check_pem(ca: str, cert: str, key: str | None) -> None:
    """That the files are what their keys say, as Dask will load them (ConfigError if not)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except ssl.SSLError as e:
        raise ConfigError(
            f"farm.tls_ca_file = {ca}: not a PEM CA certificate ({_reason(e)})"
        ) from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        where = f"farm.tls_cert = {cert}" + ("" if key is None else f", farm.tls_key = {key}")
        raise ConfigError(
            f"{where}: not a PEM certificate and its matching private key ({_reason(e)})"
        ) from None


def _reason(e: ssl.SSLError) -> str:
    """An SSL error's words: OpenSSL's reason code, else its message without the C source line."""
    reason = getattr(e, "reason", None)
    return str(reason) if reason else re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(e))


def check_address(address: str, security: Security | None) -> None:
    """That ``address`` (``tcp://`` or ``tls://``) fits the TLS setting; ConfigError if not.

    A ``tls://`` address needs ``[farm] tls_*``; a ``tcp://`` one is refused while
    they are set (encryption is required of every member of a TLS farm).
    """
    scheme = address.partition("://")[0]
    if scheme == "tls" and security is None:
        raise ConfigError(
            f"{address} is a TLS address, and TLS is not configured: set farm.tls_ca_file, "
            "farm.tls_cert and farm.tls_key (the farm's CA, this host's certificate and key; "
            "see docs/FARM.md)"
        )
    if scheme != "tls" and security is not None:
        raise ConfigError(
            f"{address} is not a TLS address, and TLS is configured (farm.tls_ca_file): "
            f"encryption is required, use tls://{address.partition('://')[2] or address}"
        )


def for_address(config: Config, address: str) -> Security | None:
    """:func:`load` then :func:`check_address`: what a node or a client of ``address`` uses."""
    security = load(config)
    check_address(address, security)
    return security


def explain(exc: BaseException, *, trusted: bool = False) -> str | None:
    """What a TLS failure in ``exc``'s chain means, in words; None if there is none.

    Dask reports a refused handshake as a closed comm ("TLS certificate does
    not match", or a stream closed by an SSL error); which side refused is in
    the SSL error beneath it. ``trusted``: this host had verified the
    scheduler's certificate (the comm was open), so a connection the scheduler
    ends is its refusal of this host's certificate.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    first_ssl: ssl.SSLError | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return (
                "TLS handshake failed: this host does not trust the scheduler's certificate "
                f"(not signed by the CA in farm.tls_ca_file: {current.verify_message})"
            )
        if isinstance(current, ssl.SSLError) and first_ssl is None:
            first_ssl = current
        # tornado's StreamClosedError holds the SSL error in real_error, unchained
        current = getattr(current, "real_error", None) or current.__cause__ or current.__context__
    if first_ssl is None:
        return None
    reason = _reason(first_ssl)
    eof = isinstance(first_ssl, ssl.SSLEOFError)
    if eof and not trusted:
        return (
            "TLS handshake failed: the scheduler closed the connection, refusing this host's "
            "certificate (farm.tls_cert not signed by the farm's CA?) or not speaking TLS "
            f"({reason})"
        )
    alert = reason.upper()  # TLSV1_ALERT_UNKNOWN_CA, SSLV3_ALERT_BAD_CERTIFICATE, ...
    if eof or ("ALERT" in alert and ("_CA" in alert or "CERTIFICATE" in alert)):
        return (
            "TLS handshake failed: the scheduler refused this host's certificate "
            f"(farm.tls_cert is not signed by the farm's CA: {reason})"
        )
    return f"TLS handshake failed ({reason}): does the scheduler at that address speak TLS?"


async def handshake(address: str, security: Security, role: str, timeout: float) -> None:
    """A TLS handshake with the scheduler at ``address`` as ``role`` (a worker, a client).

    Dask's Worker retries a refused handshake until its start times out, and
    says only that it timed out; this says why, at once: :class:`Refused` (an
    OSError) in :func:`explain`'s words. A scheduler that is not there yet is
    tried again until ``timeout``, then OSError. Plain TLS, no Dask protocol:
    once this host trusts the scheduler's certificate, the scheduler's verdict
    on this host's comes as its first bytes (Dask's listener speaks first), or
    as an alert or an end instead (TLS 1.3 sends it after the handshake).
    """
    context = security.get_connection_args(role)["ssl_context"]  # type: ignore[no-untyped-call]
    where = urlsplit(address)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(where.hostname, where.port, ssl=context),
                max(0.01, deadline - loop.time()),
            )
            break
        except ssl.SSLError as e:
            raise Refused(explain(e) or str(e)) from None
        except OSError as e:  # not listening (yet), or no answer in time
            if loop.time() >= deadline:
                raise OSError(f"no TLS connection to {address} in {timeout:g} s: {e}") from e
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
    try:
        first = await asyncio.wait_for(reader.read(1), max(0.01, deadline - loop.time()))
    except ssl.SSLError as e:
        raise Refused(explain(e, trusted=True) or str(e)) from None
    except TimeoutError:
        raise OSError(f"no word from the scheduler at {address} in {timeout:g} s") from None
    except ConnectionError as e:  # reset: ended at once
        raise Refused(explain(ssl.SSLEOFError(str(e)), trusted=True) or str(e)) from None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not first:  # the scheduler ended the connection at once
        raise Refused(explain(ssl.SSLEOFError("connection closed"), trusted=True) or "closed")


def _tls_files(config: Config) -> tuple[str, str, str | None] | None:
    """(ca, cert, key) as :func:`load` checks them; None without TLS."""
    if load(config) is None:
        return None
    ca, cert, key = (_readable(config, k) for k in KEYS)
    assert ca is not None and cert is not None
    return ca, cert, key


def serve_context(config: Config) -> ssl.SSLContext | None:
    """The origin's TLS for ``--ship-media``: its certificate, and only the farm's members.

    A node must present a certificate the farm's CA signed (mutual TLS, as with
    Dask); None without TLS (the media server then speaks plain HTTP, with its
    bearer token, and should serve on a trusted network only).
    """
    files = _tls_files(config)
    if files is None:
        return None
    ca, cert, key = files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def fetch_context(config: Config) -> ssl.SSLContext | None:
    """A render node's TLS when it fetches shipped media: trusts the farm's CA, presents its own.

    As with Dask, host names are not checked (members are often reached by
    address): the farm's CA is the trust. None without TLS.
    """
    files = _tls_files(config)
    if files is None:
        return None
    ca, cert, key = files
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.check_hostname = False
    context.load_cert_chain(cert, key)
    return context
