"""The dashboard's session cookie, CSRF token and login limit (pure, no server)."""

from __future__ import annotations

from novita_manager.dashboard.session import OPEN, LoginLimiter, Sessions


def test_a_configured_key_logs_in_and_the_cookie_holds_no_key():
    sessions = Sessions(["key-one", "key-two"])
    assert sessions.login_required
    key_id = sessions.match("key-two")
    assert key_id is not None
    assert sessions.match(" key-two ") == key_id  # pasted with spaces
    assert sessions.match("key-three") is None
    assert sessions.match("") is None
    session = sessions.new(key_id)
    cookie = sessions.dump(session)
    assert "key-two" not in cookie
    assert sessions.load(cookie) == session


def test_a_tampered_expired_or_foreign_cookie_is_refused():
    sessions = Sessions(["key-one"])
    cookie = sessions.dump(sessions.new(sessions.match("key-one") or ""))
    assert sessions.load(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert sessions.load("") is None
    assert sessions.load(None) is None
    assert sessions.load("garbage") is None
    assert Sessions(["key-one"], max_age=-1).load(cookie) is None  # expired
    # Another key set signs differently: a cookie does not survive a change of API_KEYS.
    assert Sessions(["key-other"]).load(cookie) is None
    # The same keys on another replica or after a restart: still valid.
    assert Sessions(["key-one"]).load(cookie) is not None


def test_removing_a_key_ends_its_sessions():
    both = Sessions(["key-one", "key-two"])
    cookie = both.dump(both.new(both.match("key-two") or ""))
    assert both.load(cookie) is not None
    assert Sessions(["key-one"]).load(cookie) is None


def test_open_dashboard_sessions_carry_only_a_csrf_token():
    sessions = Sessions([])
    assert not sessions.login_required
    assert sessions.match("anything") is None
    session = sessions.anonymous()
    assert session.key_id == OPEN
    assert sessions.load(sessions.dump(session)) == session
    keyed = Sessions(["key-one"])
    assert keyed.load(keyed.dump(keyed.anonymous())) is None  # no anonymous session with keys


def test_csrf_token_comparison():
    sessions = Sessions(["key-one"])
    session = sessions.new("x")
    assert Sessions.csrf_ok(session, session.csrf)
    assert not Sessions.csrf_ok(session, None)
    assert not Sessions.csrf_ok(session, "")
    assert not Sessions.csrf_ok(session, sessions.new("x").csrf)  # each session its own token


def test_login_limiter_blocks_after_the_limit_and_recovers():
    now = [0.0]
    limiter = LoginLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4") == 0.0
        limiter.record_failure("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") > 59
    assert limiter.retry_after("5.6.7.8") == 0.0  # per address
    now[0] = 30.0
    assert 29 < limiter.retry_after("1.2.3.4") <= 30
    now[0] = 60.5
    assert limiter.retry_after("1.2.3.4") == 0.0
    unlimited = LoginLimiter(0, clock=lambda: now[0])
    for _ in range(100):
        unlimited.record_failure("1.2.3.4")
    assert unlimited.retry_after("1.2.3.4") == 0.0
