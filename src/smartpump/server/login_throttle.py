"""Failed-login throttling that slows guessing without letting anyone lock an account out everywhere.

Three limits, each over the lockout period (``SMARTPUMP_LOGIN_LOCKOUT_MINUTES``):

* one account from one client address: ``SMARTPUMP_LOGIN_MAX_FAILURES`` failures lock that pair only,
  so guessing an admin's password from one machine does not stop the admin logging in from another;
* one client address, whatever the accounts: ``SMARTPUMP_LOGIN_CLIENT_MAX_FAILURES`` failures throttle
  the address (password spraying);
* one account from everywhere: ``SMARTPUMP_LOGIN_ACCOUNT_MAX_FAILURES`` consecutive failures (NIST SP
  800-63B caps them at 100) lock the account (``users.locked_until``), except from the trusted networks
  (``SMARTPUMP_LOGIN_TRUSTED_NETWORKS``, loopback by default), so a distributed attack never locks the
  administrators out of their own consoles.

The first two live in this process's memory (bounded: the oldest entries go first); the client address is
the one the ASGI server reports, so behind a reverse proxy run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` set to the proxy.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

MAX_TRACKED: Final = 100_000
"""Entries each table keeps at most (account-client pairs, clients); the oldest are dropped first."""


@dataclass(slots=True)
class _Window:
    failures: int
    started: datetime
    locked_until: datetime | None = None


class _Counter:
    """Failures per key within a window; ``limit`` of them lock the key for the window's length."""

    def __init__(self, limit: int, period: timedelta, max_tracked: int) -> None:
        self._limit = limit
        self._period = period
        self._max = max_tracked
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def locked_until(self, key: str, now: datetime) -> datetime | None:
        window = self._windows.get(key)
        if window is None or window.locked_until is None or window.locked_until <= now:
            return None
        return window.locked_until

    def fail(self, key: str, now: datetime) -> bool:
        """Count a failure; True when it locks the key."""
        window = self._windows.get(key)
        if window is None or now - window.started >= self._period:
            window = _Window(failures=0, started=now)
        window.failures += 1
        locks = window.failures >= self._limit
        if locks:
            window.locked_until = now + self._period
        self._windows[key] = window
        self._windows.move_to_end(key)
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
        return locks

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class LoginThrottle:
    """The per-pair and per-client limits of one server process (see the module docstring)."""

    def __init__(
        self,
        *,
        pair_max_failures: int,
        client_max_failures: int,
        lockout: timedelta,
        trusted_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self._pairs = _Counter(pair_max_failures, lockout, max_tracked)
        self._clients = _Counter(client_max_failures, lockout, max_tracked)
        self._trusted = tuple(trusted_networks)

    def retry_after_s(self, username: str, client: str, now: datetime) -> int | None:
        """Seconds until this account may be tried from this client again, or None when it may now."""
        until = [
            moment
            for moment in (
                self._pairs.locked_until(_pair(username, client), now),
                self._clients.locked_until(client, now),
            )
            if moment is not None
        ]
        return int((max(until) - now).total_seconds()) + 1 if until else None

    def failed(self, username: str, client: str, now: datetime) -> list[str]:
        """Count a failed login; the limits it reached (``account_client``, ``client``)."""
        reached = []
        if self._pairs.fail(_pair(username, client), now):
            reached.append("account_client")
        if self._clients.fail(client, now):
            reached.append("client")
        return reached

    def succeeded(self, username: str, client: str) -> None:
        """A good login from this client clears its failures on this account."""
        self._pairs.clear(_pair(username, client))

    def is_trusted(self, client: str) -> bool:
        """Whether the client address is in a trusted network (never subject to the account-wide lock)."""
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)


def _pair(username: str, client: str) -> str:
    return f"{username.casefold()}\x00{client}"
