"""Which pumps may speak: the device registry the PKI publishes, read by the ingest worker.

The broker proves who a client is (its certificate) and binds it to its own topics (the ACL); the
transport has checked that a message's topic names the pump its envelope names. ``DeviceGate`` then
accepts a message only when that pump has an active, unexpired certificate in the registry
(``SMARTPUMP_DEVICE_REGISTRY``): a revoked pump is refused the moment the registry says so, even
before the broker reloads its CRL. Every refusal has a code, is counted and logged (at most once a
minute per pump and code, so a flood cannot fill the disk). Without a registry (the in-process demo,
development) every pump passes and only the fleet registry decides (unknown pumps are quarantined).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from smartpump.clock import Clock
from smartpump.server.pki import Identity, PkiError, read_registry

logger = logging.getLogger("smartpump.server.device_identity")

UNENROLLED: Final = "device.unenrolled"
REVOKED: Final = "device.revoked"
EXPIRED: Final = "device.expired"
REGISTRY_UNREADABLE: Final = "device.registry_unreadable"
LOG_EVERY_S: Final = 60.0
MAX_LOG_KEYS: Final = 10_000


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The registry as parsed: per pump serial, the latest expiry of its active certificates (None when
    it has certificates but none active)."""

    stamp: tuple[int, int, int]
    active_until: dict[str, datetime | None]


class IdentityRegistry:
    """The registry file, parsed again whenever it changes on disk (checked on every lookup)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self._clock = clock
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def refusal(self, serial: str) -> str | None:
        """None when ``serial`` has an active certificate valid now, else the refusal code."""
        try:
            active_until = self._current()
        except (OSError, PkiError):
            logger.exception("device registry %s unreadable; refusing every pump", self.path)
            return REGISTRY_UNREADABLE
        if serial not in active_until:
            return UNENROLLED
        until = active_until[serial]
        if until is None:
            return REVOKED
        if until <= self._clock.now():
            return EXPIRED
        return None

    def _current(self) -> dict[str, datetime | None]:
        info = os.stat(self.path)
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or snapshot.stamp != stamp:
                snapshot = _Snapshot(stamp, _active_until(read_registry(self.path)))
                self._snapshot = snapshot
        return snapshot.active_until


def _active_until(identities: list[Identity]) -> dict[str, datetime | None]:
    found: dict[str, datetime | None] = {}
    for identity in identities:
        if identity.kind != "pump":
            continue
        latest = found.get(identity.name)
        if identity.status == "active":
            until = datetime.fromisoformat(identity.not_after)
            found[identity.name] = until if latest is None else max(latest, until)
        else:
            found.setdefault(identity.name, None)
    return found


class DeviceGate:
    """Accepts or refuses each pump message by its sender's enrolment; counts and logs refusals."""

    def __init__(self, registry: IdentityRegistry | None, clock: Clock) -> None:
        self.registry = registry
        self._clock = clock
        self.refused: Counter[str] = Counter()
        self._logged_at: dict[tuple[str, str], float] = {}

    def refusal(self, serial: str, what: str) -> str | None:
        """None to accept a ``what`` message of pump ``serial``; else its code, counted and logged."""
        if self.registry is None:
            return None
        code = self.registry.refusal(serial)
        if code is not None:
            self.refused[code] += 1
            self._log(serial, code, what)
        return code

    def _log(self, serial: str, code: str, what: str) -> None:
        now = self._clock.monotonic_s()
        key = (serial, code)
        last = self._logged_at.get(key)
        if last is not None and now - last < LOG_EVERY_S:
            return
        if len(self._logged_at) >= MAX_LOG_KEYS:
            self._logged_at.clear()
        self._logged_at[key] = now
        logger.warning(
            "refused a %s message of pump %s: %s (nothing stored, nothing acked; %d refusals of this code)",
            what,
            serial,
            code,
            self.refused[code],
        )
