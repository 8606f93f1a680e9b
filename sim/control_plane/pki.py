"""The control plane's keys: a CA, the API server's serving certificate, the service-account
signing key and the static bearer tokens of its clients. Made fresh for every start, in the
plane's own folder; nothing here is meant to outlive a test run."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# Who the static tokens stand for, and their groups: the admin, and the two components whose
# RBAC the API server's bootstrap policy grants by user name.
USERS = {"admin": ("kubernetes-admin", "system:masters"),
         "kube-controller-manager": ("system:kube-controller-manager", ""),
         "kube-scheduler": ("system:kube-scheduler", ""),
         "kueue": ("kueue-admin", "system:masters")}


@dataclass
class Pki:
    folder: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    tokens: dict[str, str]  # USERS key -> bearer token


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _cert(subject: str, key, issuer_cert, issuer_key, *, ca: bool, hosts: tuple[str, ...] = ()) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = (builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def serving_pair(pki: Pki, name: str, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """A serving certificate signed by the plane's CA (for the API server, or a webhook)."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = _key()
    cert = _cert(name, key, ca, ca_key, ca=False, hosts=hosts)
    cert_path, key_path = pki.folder / f"{name}.crt", pki.folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("spillway-control-plane-ca", ca_key, None, None, ca=True)
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, folder / "ca.key")
    sa = _key()
    _write_key(sa, folder / "sa.key")
    (folder / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    tokens = {who: secrets.token_hex(16) for who in USERS}
    lines = [f'{tokens[who]},{user},{who},"{group}"' if group else f"{tokens[who]},{user},{who}"
             for who, (user, group) in USERS.items()]
    (folder / "tokens.csv").write_text("\n".join(lines) + "\n")
    (folder / "tokens.csv").chmod(0o600)
    pki = Pki(folder, folder / "ca.crt", folder / "ca.key", folder / "apiserver.crt", folder / "apiserver.key",
              folder / "sa.key", folder / "sa.pub", folder / "tokens.csv", tokens)
    serving_pair(pki, "apiserver", ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                    "kubernetes.default.svc", "10.0.0.1"))
    return pki
