"""Who may use the web UI: token, then cookie; own origin for websockets; own Host always."""

from __future__ import annotations

import pytest

from lumiera.stage.web.auth import Auth, Verdict

AUTH = Auth.new(8123, "s3cret-token")
HOST = "127.0.0.1:8123"


def verdict(**given: object) -> Verdict:
    args: dict[str, object] = {"host": HOST, "query_token": None, "cookie": None, **given}
    return AUTH.check(**args).verdict  # type: ignore[arg-type]


def test_a_fresh_token_is_random_and_long_and_the_url_carries_it():
    a, b = Auth.new(8123), Auth.new(8123)
    assert a.token != b.token and len(a.token) >= 40
    assert a.url == f"http://127.0.0.1:8123/?token={a.token}"
    assert a.origin == "http://127.0.0.1:8123"


def test_the_cookie_is_named_per_port_since_cookies_do_not_tell_ports_apart():
    assert Auth.new(8123).cookie_name != Auth.new(8124).cookie_name


def test_a_request_with_neither_token_nor_cookie_is_forbidden_saying_so():
    decision = AUTH.check(host=HOST, query_token=None, cookie=None)
    assert decision.verdict is Verdict.FORBID and decision.why == "no token"


def test_the_right_token_in_the_address_logs_the_page_in():
    assert verdict(query_token="s3cret-token") is Verdict.LOGIN


@pytest.mark.parametrize("token", ["", "s3cret-tokeN", "s3cret-token ", "x" * 10_000])
def test_a_wrong_token_is_forbidden(token):
    assert verdict(query_token=token) is Verdict.FORBID


def test_a_wrong_token_is_forbidden_even_beside_a_good_cookie():
    assert verdict(query_token="nope", cookie="s3cret-token") is Verdict.FORBID


def test_the_cookie_lets_every_later_request_in_and_a_stale_one_does_not():
    assert verdict(cookie="s3cret-token") is Verdict.ALLOW
    stale = AUTH.check(host=HOST, query_token=None, cookie="from-an-earlier-run")
    assert stale.verdict is Verdict.FORBID and "stale cookie" in stale.why


@pytest.mark.parametrize("host", [None, "evil.example:8123", "127.0.0.1:9999", "127.0.0.1"])
def test_a_request_naming_another_host_is_forbidden_whatever_it_carries(host):
    assert verdict(host=host, cookie="s3cret-token") is Verdict.FORBID


def test_localhost_names_the_server_too():
    assert verdict(host="localhost:8123", cookie="s3cret-token") is Verdict.ALLOW
    assert verdict(host="LOCALHOST:8123", cookie="s3cret-token") is Verdict.ALLOW


def test_a_websocket_from_the_own_origin_with_the_cookie_or_token_is_allowed():
    own = AUTH.origin
    assert verdict(websocket=True, origin=own, cookie="s3cret-token") is Verdict.ALLOW
    assert verdict(websocket=True, origin=own, query_token="s3cret-token") is Verdict.ALLOW


@pytest.mark.parametrize(
    "origin",
    [None, "http://evil.example", "http://127.0.0.1:9999", "null", "https://127.0.0.1:8123"],
)
def test_a_websocket_from_any_other_origin_is_forbidden_even_with_the_cookie(origin):
    decision = AUTH.check(
        host=HOST, query_token=None, cookie="s3cret-token", websocket=True, origin=origin
    )
    assert decision.verdict is Verdict.FORBID and "origin" in decision.why


def test_a_websocket_from_the_own_origin_without_token_or_cookie_is_forbidden():
    assert verdict(websocket=True, origin=AUTH.origin) is Verdict.FORBID


def test_an_earlier_token_is_kept_when_given():
    assert Auth.new(8123, "kept").token == "kept"
