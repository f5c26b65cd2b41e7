"""Who may use the web UI: a random token in the URL, then a cookie, as Jupyter does.

The server listens on 127.0.0.1 only, but any local user's browser (and any
web page it shows) can reach that, so every request must prove it knows the
token lumiera printed:

- a page loaded as ``/?token=T`` with the right token gets a cookie (HttpOnly,
  SameSite=Strict, its name per port, since cookies do not tell ports apart)
  and a redirect to the same address without the token, so the token leaves
  the address bar and the history;
- any later request carries the cookie; one with neither a valid token nor a
  valid cookie is refused (403), and so is a wrong token even beside a good
  cookie;
- a websocket upgrade must also come from the server's own origin (a page of
  another site could otherwise open one with the user's cookie), and every
  request must name the server as its Host (no DNS rebinding).

Pure logic: :meth:`Auth.check` decides from what a request carries; the
server's middleware (:mod:`.server`) applies the verdict. Comparisons take
constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import enum
import hmac
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 32  # secrets.token_urlsafe: 43 characters
HOST = "127.0.0.1"
MAX_TOKEN_CHARS = 256  # longer is refused before any comparison


class Verdict(enum.Enum):
    ALLOW = "allow"
    LOGIN = "login"  # right token in the address: set the cookie, redirect without it
    FORBID = "forbid"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    why: str = ""  # for a refusal: what was missing (logged, and said in the 403)


@dataclass(frozen=True)
class Auth:
    """The token of one server on ``port``, and the rules of the module docstring."""

    token: str
    port: int

    @classmethod
    def new(cls, port: int, token: str | None = None) -> Auth:
        """A fresh random token (or ``token``, kept from an earlier start) for ``port``."""
        return cls(token or secrets.token_urlsafe(TOKEN_BYTES), port)

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """What the user opens: the server's root with the token."""
        return f"{self.origin}/?token={self.token}"

    @property
    def cookie_name(self) -> str:
        return f"lumiera-token-{self.port}"

    @property
    def hosts(self) -> frozenset[str]:
        """The Host headers naming this server."""
        return frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})

    def valid(self, given: str | None) -> bool:
        """Whether ``given`` is the token (constant time in its content)."""
        if not given or len(given) > MAX_TOKEN_CHARS:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def check(
        self,
        *,
        host: str | None,
        query_token: str | None,
        cookie: str | None,
        websocket: bool = False,
        origin: str | None = None,
    ) -> Decision:
        """The verdict for a request carrying these (None: the request had none)."""
        if host is None or host.lower() not in self.hosts:
            return Decision(Verdict.FORBID, f"Host {host!r} is not this server")
        if websocket and origin != self.origin:
            return Decision(Verdict.FORBID, f"a websocket from origin {origin!r}")
        if query_token is not None:
            if not self.valid(query_token):
                return Decision(Verdict.FORBID, "a wrong token")
            # A page learns the cookie and loses the token from its address; a
            # websocket (or a script's request) simply goes on.
            return Decision(Verdict.ALLOW if websocket else Verdict.LOGIN)
        if self.valid(cookie):
            return Decision(Verdict.ALLOW)
        if cookie:
            return Decision(Verdict.FORBID, "a stale cookie (lumiera restarted?)")
        return Decision(Verdict.FORBID, "no token")
