"""The device PKI: a CA, pump enrolment (own key or CSR), rotation, revocation in the CRL and the
registry, keys 0600, names refused; and the Mosquitto config and ACL generated from it."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from smartpump.cli import app
from smartpump.clock import ManualClock
from smartpump.server.broker_config import BrokerOptions, acl_text, write_broker_config
from smartpump.server.device_identity import EXPIRED, REVOKED, UNENROLLED, DeviceGate, IdentityRegistry
from smartpump.server.pki import (
    BROKER_NAME,
    PUMP_URN,
    DevicePki,
    PkiError,
    ca_cert_file,
    identity_files,
    read_registry,
    verify_crl,
)

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


@pytest.fixture
def pki(tmp_path: Path, clock: ManualClock) -> DevicePki:
    made = DevicePki(tmp_path / "pki", clock)
    made.init_ca("north")
    return made


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_pump_certificate_names_the_serial_and_chains_to_the_ca(pki: DevicePki) -> None:
    issued = pki.enrol_pump("PUMP-0001")
    cert = _cert(issued.cert_path)
    ca = _cert(pki.ca_cert_path)

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "PUMP-0001"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [PUMP_URN + "PUMP-0001"]
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc - START == timedelta(days=365)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert issued.identity.cert_serial == f"{cert.serial_number:x}"


def test_private_keys_are_readable_by_their_owner_only(pki: DevicePki) -> None:
    issued = pki.enrol_pump("PUMP-0001")
    server = pki.issue_server("ingest")
    broker = pki.issue_broker(["127.0.0.1", "broker.north.example"])
    keys = [pki.directory / "private" / "ca.key", issued.key_path, server.key_path, broker.key_path]
    for key in keys:
        assert key is not None and _mode(key) == 0o600, key
        assert _mode(key.parent) == 0o700, key.parent
    assert _mode(pki.ca_cert_path) == 0o644 and _mode(pki.registry_path) == 0o644


def test_the_layout_readers_use_is_where_the_pki_writes(pki: DevicePki) -> None:
    issued = pki.enrol_pump("PUMP-0001")
    server = pki.issue_server("ingest")
    broker = pki.issue_broker(["127.0.0.1"])
    assert identity_files(pki.directory, "pump", "PUMP-0001") == (issued.cert_path, issued.key_path)
    assert identity_files(pki.directory, "server", "server:ingest") == (server.cert_path, server.key_path)
    assert identity_files(pki.directory, "server", "ingest") == (server.cert_path, server.key_path)
    assert identity_files(pki.directory, "broker", BROKER_NAME) == (broker.cert_path, broker.key_path)
    assert ca_cert_file(pki.directory) == pki.ca_cert_path and pki.ca_cert_path.is_file()


def test_a_broker_certificate_serves_its_hosts(pki: DevicePki) -> None:
    cert = _cert(pki.issue_broker(["127.0.0.1", "broker.north.example"]).cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["broker.north.example"]
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


def test_enrolment_from_a_csr_keeps_the_key_on_the_pump(pki: DevicePki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PUMP-0002")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    issued = pki.enrol_pump("PUMP-0002", csr_pem=csr)
    assert issued.key_path is None and not (pki.directory / "pumps" / "PUMP-0002.key").exists()
    assert _cert(issued.cert_path).public_key() == key.public_key()

    with pytest.raises(PkiError) as caught:
        pki.enrol_pump("PUMP-0003", csr_pem=csr)
    assert caught.value.code == "pki.csr_name"
    with pytest.raises(PkiError) as caught:
        pki.enrol_pump("PUMP-0003", csr_pem=b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    assert caught.value.code == "pki.csr"


def test_rotation_issues_a_new_key_and_revokes_the_old_certificate(
    pki: DevicePki, clock: ManualClock
) -> None:
    first = pki.enrol_pump("PUMP-0001")
    old_key = first.key_path.read_bytes() if first.key_path else b""
    clock.advance(3600)
    second = pki.rotate_pump("PUMP-0001")

    assert second.key_path is not None and second.key_path.read_bytes() != old_key
    states = {i.cert_serial: i.status for i in pki.identities()}
    assert states == {first.identity.cert_serial: "superseded", second.identity.cert_serial: "active"}
    revoked = {r.serial_number for r in verify_crl(pki.crl_path, pki.ca_cert_path)}
    assert revoked == {int(first.identity.cert_serial, 16)}

    with pytest.raises(PkiError) as caught:
        pki.rotate_pump("PUMP-0009")
    assert caught.value.code == "pki.not_enrolled"
    with pytest.raises(PkiError) as caught:
        pki.enrol_pump("PUMP-0001")
    assert caught.value.code == "pki.enrolled"


def test_revoking_a_lost_pump_puts_every_certificate_of_it_in_the_crl(pki: DevicePki) -> None:
    first = pki.enrol_pump("PUMP-0001")
    second = pki.rotate_pump("PUMP-0001")
    other = pki.enrol_pump("PUMP-0002")
    revoked = pki.revoke("PUMP-0001", reason="lost on ward 4")

    assert [i.cert_serial for i in revoked] == [first.identity.cert_serial, second.identity.cert_serial]
    in_crl = {r.serial_number for r in verify_crl(pki.crl_path, pki.ca_cert_path)}
    assert in_crl == {int(first.identity.cert_serial, 16), int(second.identity.cert_serial, 16)}
    assert int(other.identity.cert_serial, 16) not in in_crl
    assert {i.name: i.status for i in read_registry(pki.registry_path)}["PUMP-0002"] == "active"
    assert pki.active("PUMP-0001") is None
    with pytest.raises(PkiError) as caught:
        pki.revoke("PUMP-0001")
    assert caught.value.code == "pki.unknown"


@pytest.mark.parametrize("serial", ["", "a/b", "+", "#", "x" * 65, "pump 1", "server:x", "ümlaut", "Broker"])
def test_names_that_could_widen_a_topic_or_the_acl_are_refused(pki: DevicePki, serial: str) -> None:
    with pytest.raises(PkiError) as caught:
        pki.enrol_pump(serial)
    assert caught.value.code == "pki.name"


def test_nothing_is_issued_without_a_ca_and_a_second_ca_is_refused(tmp_path: Path, pki: DevicePki) -> None:
    with pytest.raises(PkiError) as caught:
        DevicePki(tmp_path / "empty", ManualClock(start=START)).enrol_pump("PUMP-0001")
    assert caught.value.code == "pki.no_ca"
    with pytest.raises(PkiError) as caught:
        pki.init_ca("north")
    assert caught.value.code == "pki.ca_exists"


def test_the_server_gate_follows_the_registry_as_it_changes(pki: DevicePki, clock: ManualClock) -> None:
    gate = DeviceGate(IdentityRegistry(pki.registry_path, clock), clock)
    assert gate.refusal("PUMP-0001", "events") == UNENROLLED
    pki.enrol_pump("PUMP-0001", days=30)
    assert gate.refusal("PUMP-0001", "events") is None
    pki.rotate_pump("PUMP-0001", days=30)
    assert gate.refusal("PUMP-0001", "events") is None
    clock.advance(31 * 86400)
    assert gate.refusal("PUMP-0001", "events") == EXPIRED
    pki.revoke("PUMP-0001")
    assert gate.refusal("PUMP-0001", "events") == REVOKED
    assert gate.refused == {UNENROLLED: 1, EXPIRED: 1, REVOKED: 1}


def test_an_unreadable_registry_refuses_every_pump(pki: DevicePki, clock: ManualClock) -> None:
    pki.enrol_pump("PUMP-0001")
    pki.registry_path.write_text("{not json", encoding="utf-8")
    gate = DeviceGate(IdentityRegistry(pki.registry_path, clock), clock)
    assert gate.refusal("PUMP-0001", "events") == "device.registry_unreadable"


def test_the_acl_binds_each_pump_to_its_own_topics_and_lists_the_servers() -> None:
    text = acl_text(["smartpump/v1"], ["server:ingest"])
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "pattern write smartpump/v1/pumps/%u/events",
        "pattern write smartpump/v1/pumps/%u/results",
        "pattern write smartpump/v1/pumps/%u/status",
        "pattern write smartpump/v1/pumps/%u/heartbeat",
        "pattern read smartpump/v1/pumps/%u/ack",
        "pattern read smartpump/v1/pumps/%u/commands",
        "user server:ingest",
        "topic read smartpump/v1/pumps/+/events",
        "topic read smartpump/v1/pumps/+/results",
        "topic read smartpump/v1/pumps/+/status",
        "topic read smartpump/v1/pumps/+/heartbeat",
        "topic write smartpump/v1/pumps/+/ack",
        "topic write smartpump/v1/pumps/+/commands",
    ]
    with pytest.raises(PkiError):
        acl_text(["smartpump/#"], ["server:ingest"])
    with pytest.raises(PkiError):
        acl_text(["smartpump/v1\ntopic readwrite #"], ["server:ingest"])


def test_the_broker_config_requires_certificates_and_ties_the_client_id_to_them(
    pki: DevicePki, tmp_path: Path
) -> None:
    with pytest.raises(PkiError) as caught:
        write_broker_config(pki, BrokerOptions(), tmp_path / "broker")
    assert caught.value.code == "pki.no_broker"
    pki.issue_broker(["127.0.0.1"])
    with pytest.raises(PkiError) as caught:
        write_broker_config(pki, BrokerOptions(), tmp_path / "broker")
    assert caught.value.code == "pki.no_server"
    pki.issue_server("ingest")
    pki.issue_server("replica-2")
    files = write_broker_config(pki, BrokerOptions(port=8883), tmp_path / "broker")

    settings = dict(
        line.split(" ", 1)
        for line in files.config.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings["allow_anonymous"] == "false"
    assert settings["require_certificate"] == "true"
    assert settings["use_identity_as_username"] == "true"
    assert settings["use_username_as_clientid"] == "true"
    assert settings["crlfile"] == str(pki.crl_path.resolve())
    assert settings["tls_version"] == "tlsv1.2"
    assert settings["listener"] == "8883 0.0.0.0"
    assert int(settings["max_queued_messages"]) >= 100 * 1000, "well above Mosquitto's default of 1,000"
    assert int(settings["max_queued_bytes"]) >= int(settings["max_queued_messages"]) * 1024
    assert files.servers == ("server:ingest", "server:replica-2")
    assert "user server:replica-2" in files.acl.read_text()


def test_the_cli_enrols_rotates_and_revokes(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = str(tmp_path / "pki")

    def run(*args: str) -> str:
        result = runner.invoke(app, ["pki", *args, "--dir", directory])
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--facility", "north")
    assert "0600" in run("enrol", "PUMP-0001")
    run("rotate", "PUMP-0001")
    assert "revoked PUMP-0001" in run("revoke", "PUMP-0001", "--reason", "stolen")
    refused = runner.invoke(app, ["pki", "enrol", "PUMP/1", "--dir", directory])
    assert refused.exit_code == 2 and "pki.name" in refused.output
    listed = run("list")
    assert listed.count("PUMP-0001") == 2 and listed.count(" revoked ") == 2
