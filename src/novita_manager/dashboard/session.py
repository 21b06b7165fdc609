"""The dashboard's login: a signed session cookie that carries a CSRF token, never a key.

- Login: the user types one of API_KEYS; it is compared in constant time (SHA-256 digests, every
  configured key compared) and never stored: the cookie holds only a hash that names which key
  was used, and a random CSRF token. The cookie is signed (itsdangerous, HMAC) and timestamped,
  HttpOnly, SameSite=Strict, Secure on https, and expires after `max_age`.
- Removing a key from API_KEYS logs out every session made with it (its hash no longer matches);
  the signing secret is derived from the configured keys, so sessions survive a restart and work
  on every replica that has the same keys, and changing the keys invalidates them all.
- Without API_KEYS the dashboard is open (like /api), but the cookie still carries a CSRF token
  (signed with a per-process secret), so a page elsewhere cannot post forms here.
- Failed logins are limited per client address (AUTH_FAILURE_LIMIT per minute, as for /api).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "nm_session"
MAX_AGE = 12 * 3600  # seconds a login lasts
OPEN = "open"  # the key id of a session when no API keys are configured
MAX_ADDRESSES = 10_000


@dataclass(frozen=True)
class Session:
    key_id: str  # a hash naming the API key used to log in, or OPEN
    csrf: str  # random; every form posts it back


def _key_id(digest: bytes) -> str:
    return hashlib.sha256(b"novita-manager-dashboard-key:" + digest).hexdigest()[:32]


class Sessions:
    """Issue and check session cookies for the configured API keys."""

    def __init__(self, api_keys: Sequence[str], max_age: int = MAX_AGE) -> None:
        self._digests = [hashlib.sha256(key.encode()).digest() for key in api_keys]
        self._ids = [_key_id(digest) for digest in self._digests]
        if self._digests:
            secret = hashlib.sha256(
                b"novita-manager-dashboard-session\0" + b"".join(sorted(self._digests))
            ).digest()
        else:
            secret = secrets.token_bytes(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="dashboard-session")
        self.max_age = max_age

    @property
    def login_required(self) -> bool:
        return bool(self._digests)

    def match(self, presented: str) -> str | None:
        """The key id of the configured key equal to `presented`, else None (constant time)."""
        digest = hashlib.sha256(presented.strip().encode()).digest()
        matched: str | None = None
        for candidate, key_id in zip(self._digests, self._ids, strict=True):
            if hmac.compare_digest(digest, candidate):  # every key compared: no early exit
                matched = key_id
        return matched

    def new(self, key_id: str) -> Session:
        return Session(key_id=key_id, csrf=secrets.token_urlsafe(32))

    def anonymous(self) -> Session:
        """A session for an open dashboard (no keys configured): only a CSRF token."""
        return self.new(OPEN)

    def dump(self, session: Session) -> str:
        return self._serializer.dumps({"k": session.key_id, "c": session.csrf})

    def load(self, cookie: str | None) -> Session | None:
        """The session in a cookie that is genuine, unexpired and of a configured key."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        key_id, csrf = data.get("k"), data.get("c")
        if not isinstance(key_id, str) or not isinstance(csrf, str) or not csrf:
            return None
        valid = key_id in self._ids if self._digests else key_id == OPEN
        return Session(key_id=key_id, csrf=csrf) if valid else None

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf, token)


class LoginLimiter:
    """At most `per_minute` failed logins per address in any 60 s (0: no limit)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, address: str) -> list[float]:
        now = self._clock()
        recent = [at for at in self._failures.get(address, []) if now - at < 60.0]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return recent

    def retry_after(self, address: str) -> float:
        """0.0 while the address may try again, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        recent = self._recent(address)
        if len(recent) < self.per_minute:
            return 0.0
        return max(0.1, 60.0 - (self._clock() - recent[-self.per_minute]))

    def record_failure(self, address: str) -> None:
        if self.per_minute <= 0:
            return
        recent = self._recent(address)
        recent.append(self._clock())
        self._failures.pop(address, None)
        self._failures[address] = recent[-self.per_minute :]
        if len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
