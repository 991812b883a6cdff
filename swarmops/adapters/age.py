"""App secrets: age-encrypted files in the app repo, decrypted in memory at deploy, versioned Swarm
secret names. Plaintext never reaches a disk, a log or an error."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

import pyrage
from pyrage import x25519

from swarmops.errors import SecretError

KEY_FILE = "age.key"
PUB_FILE = "age.pub"
DIGEST_KEY_FILE = "digest.key"
RECIPIENT_FILE = ".swarmops-recipient"
NAME_LIMIT = 64
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")
MAGIC = b"swarmops-secret/1\n"


def keygen(state_dir: Path, force: bool = False) -> str:
    """A new age key pair under state_dir (private key 0600); returns the public key."""
    key, pub = state_dir / KEY_FILE, state_dir / PUB_FILE
    if key.exists() and not force:
        raise SecretError(f"{key} exists already; pass --force to replace it (every secret must then be "
                          "encrypted again)")
    identity = x25519.Identity.generate()
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{identity}\n")
    os.chmod(key, 0o600)
    public = str(identity.to_public())
    pub.write_text(public + "\n")
    return public


def digest_key(state_dir: Path) -> bytes:
    """This daemon's key for digests that show a change without the value (the diff's environment): made
    once, 0600, so that equal values compare equal but a short value cannot be guessed offline."""
    path = state_dir / DIGEST_KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:   # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def load_identity(state_dir: Path) -> x25519.Identity:
    path = state_dir / KEY_FILE
    try:
        return x25519.Identity.from_str(path.read_text().strip())
    except FileNotFoundError:
        raise SecretError(f"{path} does not exist; run `swarmops keygen` on the manager") from None
    except (OSError, ValueError) as e:
        raise SecretError(f"{path}: not an age identity ({type(e).__name__})") from e


def parse_recipient(text: str, source: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(text.strip())
    except ValueError:
        raise SecretError(f"{source}: not an age public key (age1...)") from None


def find_recipient(explicit: str | None, checkout: Path, state_dir: Path | None) -> x25519.Recipient:
    """--recipient, then $SWARMOPS_AGE_RECIPIENT, then the repo's .swarmops-recipient, then state_dir."""
    if explicit:
        return parse_recipient(explicit, "--recipient")
    if os.environ.get("SWARMOPS_AGE_RECIPIENT"):
        return parse_recipient(os.environ["SWARMOPS_AGE_RECIPIENT"], "SWARMOPS_AGE_RECIPIENT")
    for path in (checkout / RECIPIENT_FILE, *([state_dir / PUB_FILE] if state_dir else [])):
        if path.is_file():
            return parse_recipient(path.read_text(), str(path))
    raise SecretError("no age public key: pass --recipient, set SWARMOPS_AGE_RECIPIENT, or add "
                      f"{RECIPIENT_FILE} (the output of `swarmops keygen`) to the repo")


def encrypt(recipient: x25519.Recipient, plaintext: bytes) -> bytes:
    data: bytes = pyrage.encrypt(plaintext, [recipient])
    return data


def decrypt(identity: x25519.Identity, ciphertext: bytes, filename: str) -> bytes:
    try:
        data: bytes = pyrage.decrypt(ciphertext, [identity])
        return data
    except (pyrage.DecryptError, ValueError, TypeError):
        raise SecretError(f"{filename}: cannot be decrypted with the daemon's key; encrypt it again with "
                          "`swarmops secret encrypt` and the current public key") from None


def seal(app: str, name: str, value: bytes) -> bytes:
    """The plaintext `swarmops secret encrypt` encrypts: app and name first, so that a ciphertext copied
    into another app's repo, or under another name, is refused (ruling 29)."""
    return MAGIC + f"app={app}\nname={name}\n\n".encode() + value


def unseal(plaintext: bytes, app: str, name: str, filename: str) -> tuple[bytes, bool]:
    """The value, and whether the file was bound to an app (files from before binding are not)."""
    if not plaintext.startswith(MAGIC):
        return plaintext, False
    head, sep, value = plaintext[len(MAGIC):].partition(b"\n\n")
    fields = dict(line.partition("=")[::2] for line in head.decode("utf-8", "replace").splitlines())
    if not sep or (fields.get("app"), fields.get("name")) != (app, name):
        raise SecretError(f"{filename}: [SO129] made for secret {fields.get('name')!r} of app {fields.get('app')!r}, "
                          f"not secret {name!r} of app {app!r}; fix: encrypt the value for this app and name: "
                          f"swarmops secret encrypt {app} {name}")
    return value, True


def versioned_name(identity: x25519.Identity, app: str, name: str, plaintext: bytes) -> str:
    """`<app>_<name>_<hmac8>`: a keyed HMAC, so the name reveals nothing about the value."""
    key = hashlib.sha256(b"swarmops secret names\0" + str(identity).encode()).digest()
    tag = hmac.new(key, app.encode() + b"\0" + name.encode() + b"\0" + plaintext, hashlib.sha256).hexdigest()[:8]
    return f"{f'{app}_{name}'[: NAME_LIMIT - 9]}_{tag}"


def rekey(folder: Path, app: str, identity: x25519.Identity, recipient: x25519.Recipient) -> list[Path]:
    """Rewrite each unbound `NAME.age` under `folder` bound to `app` and NAME; the value, and so the Swarm
    secret's name, stays the same (no restarts). Returns the files rewritten."""
    done = []
    for path in sorted(folder.glob("*.age")):
        plaintext = decrypt(identity, path.read_bytes(), str(path))
        value, bound = unseal(plaintext, app, path.stem, str(path))
        if bound:
            continue
        path.write_bytes(encrypt(recipient, seal(app, path.stem, value)))
        done.append(path)
    return done
