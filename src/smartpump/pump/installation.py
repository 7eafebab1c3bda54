"""Signed packages a server sends the pump: drug library, configuration and software, verified on
install and activated only once every channel is idle; refused server commands are logged.

Each package is verified with the key its document names, and only when the pump's ``TrustStore`` trusts
that key for the package's purpose (``KeyPurpose.LIBRARY``, ``CONFIGURATION``, ``SOFTWARE``): a library
signed with the command key is refused (``signature.wrong_purpose``) and the refusal is an event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from smartpump.errors import LibraryError, SignatureError
from smartpump.library.formats import json_format
from smartpump.library.keys import KeyPurpose, TrustStore
from smartpump.library.model import DrugLibrary
from smartpump.library.signing import SignedLibrary, verify
from smartpump.library.trust_list import SignedTrustList, verify_trust_list
from smartpump.pump.configuration import SignedConfiguration, content_sha256, verify_configuration
from smartpump.pump.core import PumpCore
from smartpump.pump.events import EventType
from smartpump.pump.software import SignedPackage

_SHA256_MEMO_SIZE: Final = 16
_sha256_memo: dict[int, tuple[DrugLibrary, str]] = {}


def library_sha256(library: DrugLibrary) -> str:
    """SHA-256 (hex) of the library's canonical bytes: its identity, which the pump reports and the server
    compares with a release (remembered per library object, which a fleet of pumps shares)."""
    held = _sha256_memo.get(id(library))
    if held is not None and held[0] is library:
        return held[1]
    digest = hashlib.sha256(json_format.canonical_bytes(library)).hexdigest()
    if len(_sha256_memo) >= _SHA256_MEMO_SIZE:
        _sha256_memo.pop(next(iter(_sha256_memo)))
    _sha256_memo[id(library)] = (library, digest)
    return digest


class Installation:
    """Library, configuration and software install and activation on one pump."""

    def __init__(self, core: PumpCore) -> None:
        self.core = core

    def install_library(self, signed: SignedLibrary, trust: TrustStore, *, hospital_id: str | None) -> None:
        """Install a signed library after verifying it with a key trusted for libraries; it becomes active
        when every channel is idle."""
        core = self.core
        core.sync()
        try:
            library = verify(
                signed,
                trust.key_for(signed.key_id, KeyPurpose.LIBRARY),
                installed_version=core.library.version if core.library else None,
                hospital_id=hospital_id,
            )
        except SignatureError as error:
            core.emit(EventType.LIBRARY_REJECTED, None, code=error.code, reason=error.message)
            raise
        core.pending_library = library
        core.emit(
            EventType.LIBRARY_INSTALLED,
            None,
            version=library.version,
            name=library.name,
            pending=not core.all_idle(),
            sha256=library_sha256(library),
            key_id=signed.key_id,
        )
        core.after_change()

    def install_configuration(
        self, signed: SignedConfiguration, trust: TrustStore, *, hospital_id: str | None
    ) -> None:
        """Install a signed configuration after verifying it (a key trusted for configurations, signature,
        hospital, model, a version above the one held); it becomes active when every channel is idle,
        never while delivering."""
        core = self.core
        core.sync()
        held = core.pending_configuration or core.configuration
        try:
            configuration = verify_configuration(
                signed,
                trust.key_for(signed.key_id, KeyPurpose.CONFIGURATION),
                model=core.caps.model,
                held_version=held.version if held is not None else 0,
                hospital_id=hospital_id,
            )
        except SignatureError as error:
            core.emit(EventType.CONFIGURATION_REJECTED, None, code=error.code, reason=error.message)
            raise
        core.pending_configuration = configuration
        core.emit(
            EventType.CONFIGURATION_INSTALLED,
            None,
            version=configuration.version,
            pending=not core.all_idle(),
        )
        core.after_change()

    def install_software(self, document: Mapping[str, object], trust: TrustStore) -> None:
        """Install a signed software package after verifying it (a key trusted for software, signature,
        model, a version above the one held); it becomes the running version when every channel is idle,
        never while delivering."""
        core = self.core
        core.sync()
        try:
            key = trust.key_for(SignedPackage.from_document(document).key_id, KeyPurpose.SOFTWARE)
            version = core.software.install(document, key, core.caps.model.value)
        except SignatureError as error:
            core.emit(EventType.SOFTWARE_REJECTED, None, code=error.code, reason=error.message)
            raise
        core.emit(EventType.SOFTWARE_INSTALLED, None, version=version, pending=not core.all_idle())
        core.after_change()

    def install_trust_list(self, signed: SignedTrustList) -> None:
        """Replace the trusted keys with a signed trust list once it verifies against the keys held now
        (``trust.installed``); a refused list changes nothing (``trust.rejected``)."""
        core = self.core
        core.sync()
        held = core.trust
        try:
            _, state = verify_trust_list(signed, held)
        except SignatureError as error:
            core.emit(
                EventType.TRUST_REJECTED, None, code=error.code, reason=error.message, key_id=signed.key_id
            )
            raise
        core.trust = state
        core.emit(
            EventType.TRUST_INSTALLED,
            None,
            version=state.version,
            previous_version=held.version,
            key_id=signed.key_id,
            key_ids=[f"{k.purpose.value}:{k.key_id}" for k in state.store.keys],
            revoked=sorted(state.revoked - held.revoked),
        )

    def record_command_refused(self, *, command: str, nonce: str, code: str, reason: str) -> None:
        """Log a server command that failed verification (forged, replayed, expired, foreign)."""
        self.core.emit(
            EventType.COMMAND_REFUSED, None, command=command, nonce=nonce, code=code, reason=reason
        )

    def after_change(self) -> None:
        """Activate a pending library, then a pending configuration, then pending software, once every
        channel is idle."""
        core = self.core
        if core.pending_library is not None and core.all_idle():
            self._activate_library()
        if core.pending_configuration is not None and core.all_idle():
            self._activate_configuration()
        if core.software.pending_version is not None and core.all_idle():
            activation = core.software.activate()
            core.emit(
                EventType.SOFTWARE_ACTIVATED,
                None,
                version=activation.version,
                previous_version=activation.previous_version,
            )

    def _activate_library(self) -> None:
        core = self.core
        new = core.pending_library
        assert new is not None
        previous = core.library.version if core.library else None
        core.library = new
        core.pending_library = None
        if core.care_area is not None:
            try:
                core.care_area = new.care_area(core.care_area.id)
            except LibraryError:
                core.care_area = None
        core.emit(
            EventType.LIBRARY_ACTIVATED,
            None,
            version=new.version,
            previous_version=previous,
            sha256=library_sha256(new),
        )

    def _activate_configuration(self) -> None:
        core = self.core
        new = core.pending_configuration
        assert new is not None
        previous = core.configuration_version
        core.configuration = new
        core.pending_configuration = None
        core.settings = new.settings
        core.require_verification = new.settings.require_verification
        for channel in core.channels.values():
            channel.near_end_s = Decimal(new.settings.near_end_alert_min) * 60
        core.emit(
            EventType.CONFIGURATION_ACTIVATED,
            None,
            version=new.version,
            previous_version=previous,
            sha256=content_sha256(new),
        )
