"""The server's Ed25519 library-signing key: read from the configured path, made on first run (0600)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartpump.keyfiles import read_private_key, write_private_key
from smartpump.library import signing


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKeys:
    """The private key (PEM), its public key (PEM) and the key id pumps see."""

    private_pem: bytes
    public_pem: bytes
    key_id: str


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half is written next to the private key."""
    return private_key_path.with_name(private_key_path.stem + ".pub.pem")


def load_or_create(path: Path) -> SigningKeys:
    """Load the private key at ``path``, generating and storing a new pair (mode 0600) when absent.

    Raises:
        SigningKeyError: a key file that is unreadable, open to others, malformed or not Ed25519.
    """
    if path.exists():
        private_pem = read_private_key(path)
        public_pem = signing.public_key_of(private_pem)
    else:
        private_pem, public_pem = signing.generate_keypair()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_key(path, private_pem)
        public_key_path(path).write_bytes(public_pem)
    return SigningKeys(
        private_pem=private_pem, public_pem=public_pem, key_id=signing.key_fingerprint(public_pem)
    )
