"""The facility's device PKI on disk: a device CA, pump and server client certificates, the broker's
certificate, rotation, revocation (CRL) and the public registry the server reads.

Layout of the directory (private keys 0600 in 0700 directories, written atomically)::

    ca.crt  crl.pem  registry.json          public: trust anchor, revocations, who is enrolled
    private/ca.key                          the CA key: keep this directory offline
    pumps/<serial>.crt  pumps/<serial>.key  a pump's identity (no key file when enrolled from a CSR)
    servers/<name>.crt  servers/<name>.key  a server replica's identity (CN ``server:<name>``)
    broker/broker.crt   broker/broker.key   the broker's TLS server certificate

A pump certificate's CN is the pump serial and its SAN holds ``urn:smartpump:pump:<serial>``; the
broker takes the CN as the MQTT username (``use_identity_as_username``), so the ACL ties the topics
to it. A rotated certificate is revoked (reason ``superseded``) at once; a revoked identity is in the
CRL and in ``registry.json``, which the server reads to refuse the pump even before the broker reloads.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smartpump.clock import Clock
from smartpump.errors import SmartpumpError
from smartpump.transport.messages import MessageError, pump_id

REGISTRY_FORMAT: Final = "smartpump-device-registry/1"
SERVER_PREFIX: Final = "server:"
BROKER_NAME: Final = "broker"
PUMP_URN: Final = "urn:smartpump:pump:"
CA_DAYS: Final = 3650
DEVICE_DAYS: Final = 365
CRL_DAYS: Final = 30
MAX_DAYS: Final = 3650
BACKDATE: Final = timedelta(minutes=5)
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,252})")

Kind = Literal["pump", "server", "broker"]
Status = Literal["active", "superseded", "revoked"]
FOLDERS: Final[dict[Kind, str]] = {"pump": "pumps", "server": "servers", "broker": "broker"}


class PkiError(SmartpumpError):
    """A PKI operation refused: no CA, already enrolled, unknown identity, bad CSR, bad name."""

    code = "pki.error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """One issued certificate as the registry records it (``name`` is the certificate's CN)."""

    name: str
    kind: Kind
    cert_serial: str
    fingerprint_sha256: str
    not_before: str
    not_after: str
    status: Status = "active"
    revoked_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate just issued and where its files are (``key_path`` None when enrolled from a CSR)."""

    identity: Identity
    cert_path: Path
    key_path: Path | None


def ca_cert_file(directory: Path) -> Path:
    """The trust anchor of the PKI in ``directory`` (what pumps, servers and the broker are given)."""
    return directory / "ca.crt"


def identity_files(directory: Path, kind: Kind, name: str) -> tuple[Path, Path]:
    """The certificate and key files of an identity in ``directory`` (a server ``name`` with or without
    ``server:``)."""
    folder = directory / FOLDERS[kind]
    stem = name.removeprefix(SERVER_PREFIX)
    return folder / f"{stem}.crt", folder / f"{stem}.key"


class DevicePki:
    """The PKI directory; every change rewrites the CRL and the registry."""

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock

    @property
    def ca_cert_path(self) -> Path:
        """The trust anchor pumps, servers and the broker are given."""
        return ca_cert_file(self.directory)

    @property
    def crl_path(self) -> Path:
        """The CRL the broker loads (``crlfile``)."""
        return self.directory / "crl.pem"

    @property
    def registry_path(self) -> Path:
        """The public registry the server reads (``SMARTPUMP_DEVICE_REGISTRY``)."""
        return self.directory / "registry.json"

    @property
    def _ca_key_path(self) -> Path:
        return self.directory / "private" / "ca.key"

    def init_ca(self, facility: str, *, days: int = CA_DAYS) -> str:
        """Create the facility's device CA (refused when one exists here); returns its SHA-256 fingerprint."""
        name = _host_like(facility, "facility")
        with self._locked():
            return self._init_ca(name, days)

    def _init_ca(self, name: str, days: int) -> str:
        if self._ca_key_path.exists() or self.ca_cert_path.exists():
            raise PkiError(f"a CA exists already in {self.directory}", code="pki.ca_exists")
        key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} device CA"),
            ]
        )
        now = self._clock.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + timedelta(days=_days(days)))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384())
        )
        _write_private(self._ca_key_path, _key_pem(key))
        _write_public(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self._save([])
        return cert.fingerprint(hashes.SHA256()).hex()

    def enrol_pump(self, serial: str, *, days: int = DEVICE_DAYS, csr_pem: bytes | None = None) -> Issued:
        """Issue a pump's first client certificate (refused when it has an active one: rotate instead)."""
        serial = _pump_serial(serial)
        with self._locked():
            if self.active(serial) is not None:
                raise PkiError(
                    f"pump {serial} is enrolled already; rotate its certificate", code="pki.enrolled"
                )
            return self._issue(serial, "pump", days=days, csr_pem=csr_pem)

    def rotate_pump(self, serial: str, *, days: int = DEVICE_DAYS, csr_pem: bytes | None = None) -> Issued:
        """Issue a pump a new certificate (new key) and revoke the old one as superseded."""
        serial = _pump_serial(serial)
        with self._locked():
            if self.active(serial) is None:
                raise PkiError(f"pump {serial} has no active certificate to rotate", code="pki.not_enrolled")
            return self._issue(serial, "pump", days=days, csr_pem=csr_pem)

    def issue_server(self, name: str, *, days: int = DEVICE_DAYS) -> Issued:
        """Issue (or reissue) a server replica's client certificate, CN ``server:<name>``."""
        with self._locked():
            return self._issue(SERVER_PREFIX + _serial(name), "server", days=days, csr_pem=None)

    def issue_broker(self, hosts: Sequence[str], *, days: int = DEVICE_DAYS) -> Issued:
        """Issue (or reissue) the broker's TLS server certificate for these host names and addresses."""
        if not hosts:
            raise PkiError("the broker certificate needs at least one host name or address", code="pki.host")
        with self._locked():
            return self._issue(
                BROKER_NAME, "broker", days=days, csr_pem=None, hosts=[_host(h) for h in hosts]
            )

    def revoke(self, name: str, *, reason: str = "lost") -> list[Identity]:
        """Revoke every unrevoked certificate of a pump serial (or ``server:<name>``); returns them."""
        with self._locked():
            identities = self.identities()
            hits = [i for i in identities if i.name == name and i.status != "revoked"]
            if not hits:
                raise PkiError(f"no unrevoked certificate of {name!r}", code="pki.unknown")
            now = self._clock.now().isoformat()
            changed = [replace(i, status="revoked", revoked_at=now, reason=_reason(reason)) for i in hits]
            by_serial = {i.cert_serial: i for i in changed}
            self._save([by_serial.get(i.cert_serial, i) for i in identities])
            return changed

    def identities(self) -> list[Identity]:
        """Every certificate issued here, oldest first."""
        return read_registry(self.registry_path)

    def active(self, name: str) -> Identity | None:
        """The active certificate of ``name``, if any."""
        return next((i for i in self.identities() if i.name == name and i.status == "active"), None)

    def write_crl(self, *, days: int = CRL_DAYS) -> Path:
        """Sign the CRL again (every superseded and revoked certificate), valid for ``days``."""
        with self._locked():
            self._save(self.identities(), crl_days=days)
        return self.crl_path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's lock: two enrolments at once never lose one from the registry."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _issue(
        self,
        name: str,
        kind: Kind,
        *,
        days: int,
        csr_pem: bytes | None,
        hosts: Sequence[str] = (),
    ) -> Issued:
        ca_key, ca_cert = self._ca()
        key: ec.EllipticCurvePrivateKey | None = None
        if csr_pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
        else:
            public_key = _csr_key(csr_pem, name)
        now = self._clock.now()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if kind == "broker" else ExtendedKeyUsageOID.CLIENT_AUTH
        names: list[x509.GeneralName] = [_general_name(h) for h in hosts]
        if kind == "pump":
            names.append(x509.UniformResourceIdentifier(PUMP_URN + name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + timedelta(days=_days(days)), ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = identity_files(self.directory, kind, name)
        if key is not None:
            _write_private(key_path, _key_pem(key))
        elif key_path.exists():
            key_path.unlink()
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        issued = _identity_of(cert, name=name, kind=kind)
        now_text = now.isoformat()
        kept = [
            replace(i, status="superseded", revoked_at=now_text, reason="superseded")
            if i.name == name and i.status == "active"
            else i
            for i in self.identities()
        ]
        self._save([*kept, issued])
        return Issued(issued, cert_path, key_path if key is not None else None)

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if not self._ca_key_path.exists():
            raise PkiError(f"no CA in {self.directory}: run `smartpump pki init` first", code="pki.no_ca")
        key = serialization.load_pem_private_key(self._ca_key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError("the CA key is not an EC key", code="pki.ca_key")
        return key, x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())

    def _save(self, identities: Iterable[Identity], *, crl_days: int = CRL_DAYS) -> None:
        """Write the registry and the CRL signed afresh."""
        ordered = list(identities)
        ca_key, ca_cert = self._ca()
        now = self._clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - BACKDATE)
            .next_update(now + timedelta(days=_days(crl_days)))
        )
        for identity in ordered:
            if identity.status != "active" and identity.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(identity.cert_serial, 16))
                    .revocation_date(datetime.fromisoformat(identity.revoked_at))
                    .build()
                )
        crl = builder.sign(ca_key, hashes.SHA384())
        _write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        document = {"format": REGISTRY_FORMAT, "identities": [asdict(i) for i in ordered]}
        _write_public(self.registry_path, (json.dumps(document, indent=2) + "\n").encode())


def read_registry(path: Path) -> list[Identity]:
    """The identities of a registry file (an absent file holds none); a malformed one is refused."""
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != REGISTRY_FORMAT:
            raise PkiError(f"{path} is not a {REGISTRY_FORMAT} document", code="pki.registry")
        return [Identity(**row) for row in document["identities"]]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise PkiError(f"unreadable device registry {path}: {error}", code="pki.registry") from error


def verify_crl(crl_path: Path, ca_cert_path: Path) -> x509.CertificateRevocationList:
    """The CRL, checked to be signed by the CA (raises ``PkiError`` otherwise)."""
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    try:
        if not crl.is_signature_valid(ca_cert.public_key()):  # type: ignore[arg-type]
            raise InvalidSignature
    except InvalidSignature as error:
        raise PkiError(f"{crl_path} is not signed by {ca_cert_path}", code="pki.crl") from error
    return crl


def _identity_of(cert: x509.Certificate, *, name: str, kind: Kind) -> Identity:
    return Identity(
        name=name,
        kind=kind,
        cert_serial=f"{cert.serial_number:x}",
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
    )


def _csr_key(csr_pem: bytes, name: str) -> ec.EllipticCurvePublicKey:
    """The public key of a CSR whose signature verifies and whose CN is ``name``."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as error:
        raise PkiError(f"not a PEM certificate request: {error}", code="pki.csr") from error
    if not csr.is_signature_valid:
        raise PkiError("the certificate request's signature does not verify", code="pki.csr")
    common_names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if common_names != [name]:
        raise PkiError(f"the request's CN is {common_names}, not [{name!r}]", code="pki.csr_name")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.key_size < 256:
        raise PkiError("the request's key must be an EC key of 256 bits or more", code="pki.csr_key")
    return key


def _serial(value: str) -> str:
    try:
        return pump_id(value)
    except MessageError as error:
        raise PkiError(error.message, code="pki.name") from error


def _pump_serial(value: str) -> str:
    """A pump serial, never the broker's own name (the registry keys identities by name)."""
    serial = _serial(value)
    if serial.casefold() == BROKER_NAME:
        raise PkiError(f"{serial!r} names the broker, not a pump", code="pki.name")
    return serial


def _host_like(value: str, what: str) -> str:
    if not _HOST.fullmatch(value):
        raise PkiError(f"not a usable {what} name: {value!r}", code="pki.name")
    return value


def _host(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        return _host_like(value, "host")


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _reason(value: str) -> str:
    text = value.strip()
    if not 0 < len(text) <= 200 or not text.isprintable():
        raise PkiError("a revocation reason is 1-200 printable characters", code="pki.reason")
    return text


def _days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise PkiError(f"a validity of {days} days is outside 1-{MAX_DAYS}", code="pki.days")
    return days


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (0600, in a 0700 directory), replacing any old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    temp = path.with_name(f".{path.name}.tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate, CRL or registry (0644) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    temp.chmod(0o644)
    os.replace(temp, path)
