"""A throwaway C2PA signing identity, for trying signing out and for tests: NEVER for real archives.

``throwaway_identity(folder)`` makes a fresh root CA and an end-entity certificate signed by it,
with the extensions the C2PA SDK insists on (see docs/provenance.md, "Configure a signing
identity"), and writes them into ``folder``. No C2PA trust list holds that root: a reader
validates the manifest as ``Trusted`` only when given the root (``colorize inspect --trust``),
and as ``Valid`` (signature intact, signer unknown) otherwise. Its key lies unencrypted beside
it and the certificates expire after 30 days. Credentials an archive relies on need an identity
from a CA on the C2PA trust list.

Needs ``cryptography`` (in the ``dev`` extra; not in ``provenance``, which signing with a real
identity does not need), imported only when called.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from colorizer.errors import ColorizerError
from colorizer.provenance import Signing

# The C2PA claim-signing extended key usage.
C2PA_CLAIM_SIGNING_OID = "1.3.6.1.4.1.62558.2.1"
DAYS_VALID = 30


def throwaway_identity(folder: Path) -> tuple[Signing, Path]:
    """A new root CA and end-entity certificate for trying signing out and for tests, never for
    real archives: the signing identity (``key.pem``, ``chain.pem``: end-entity, then root) and
    the root certificate to trust (``root.pem``), all written into ``folder``."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
    except ImportError:
        raise ColorizerError(
            "a throwaway signing identity needs the cryptography package: pip install cryptography"
        ) from None

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(
        subject: x509.Name, issuer: x509.Name, key: Any, signing_key: Any, extensions: list
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=DAYS_VALID))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    def key_usage(signs: bool) -> x509.KeyUsage:
        """digitalSignature for the signer; keyCertSign and cRLSign for the CA."""
        return x509.KeyUsage(
            digital_signature=signs,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not signs,
            crl_sign=not signs,
            encipher_only=False,
            decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    root = certificate(
        name("colorizer throwaway root (not for real archives)"),
        name("colorizer throwaway root (not for real archives)"),
        root_key,
        root_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (key_usage(signs=False), True),
            (x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False),
        ],
    )
    usages = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ObjectIdentifier(C2PA_CLAIM_SIGNING_OID)]
    signer = certificate(
        name("colorizer throwaway signer (not for real archives)"),
        root.subject,
        key,
        root_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage(signs=True), True),
            (x509.ExtendedKeyUsage(usages), False),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False),
        ],
    )
    pem = serialization.Encoding.PEM
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / "chain.pem").write_bytes(signer.public_bytes(pem) + root.public_bytes(pem))
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    return Signing(folder / "key.pem", folder / "chain.pem"), folder / "root.pem"
