"""Moderator accounts: argon2 password hashes, site assignments, API tokens stored hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import Moderator, ModeratorSite, ModeratorToken, Site

TOKEN_PREFIX = "mmt_"  # noqa: S105  (a public prefix, not a secret)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong
# password and the answer time does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def hash_password(password: str) -> str:
    """An argon2id hash with the library's current parameters."""
    return _hasher.hash(password)


def create_moderator(
    session: Session,
    email: str,
    password: str,
    *,
    sites: Iterable[Site] = (),
    is_admin: bool = False,
) -> Moderator:
    """Add a moderator; a non-admin needs at least one site to see anything."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError("the email address is not valid")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if moderator_by_email(session, email) is not None:
        raise AccountError(f"a moderator with the email {email!r} exists already")
    moderator = Moderator(email=email, password_hash=hash_password(password), is_admin=is_admin)
    moderator.sites = list(sites)
    session.add(moderator)
    session.flush()
    return moderator


def moderator_by_email(session: Session, email: str) -> Moderator | None:
    """The moderator with this email, or None."""
    query = select(Moderator).where(Moderator.email == normalise_email(email))
    return session.scalars(query).one_or_none()


def active_moderator(session: Session, moderator_id: int) -> Moderator | None:
    """The moderator with this id if the account is still active."""
    moderator = session.get(Moderator, moderator_id)
    return moderator if moderator is not None and moderator.active else None


def authenticate(session: Session, email: str, password: str) -> Moderator | None:
    """The active moderator whose password this is, or None; old hashes are upgraded."""
    moderator = moderator_by_email(session, email)
    if moderator is None or not moderator.active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(moderator.password_hash, password):
        return None
    if _hasher.check_needs_rehash(moderator.password_hash):
        moderator.password_hash = hash_password(password)
    moderator.last_login_at = utcnow()
    session.flush()
    return moderator


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def assign_site(session: Session, moderator: Moderator, site: Site) -> None:
    """Let a moderator see and act on a site's comments."""
    if site not in moderator.sites:
        moderator.sites.append(site)
    session.flush()


def visible_site_ids(session: Session, moderator: Moderator) -> frozenset[int] | None:
    """The sites a moderator may see; None means every site (an admin)."""
    if moderator.is_admin:
        return None
    query = select(ModeratorSite.site_id).where(ModeratorSite.moderator_id == moderator.id)
    return frozenset(session.scalars(query))


def visible_sites(session: Session, moderator: Moderator) -> list[Site]:
    """The sites a moderator may see, by name."""
    query = select(Site).order_by(Site.name)
    site_ids = visible_site_ids(session, moderator)
    if site_ids is not None:
        query = query.where(Site.id.in_(site_ids))
    return list(session.scalars(query))


def hash_token(token: str) -> str:
    """SHA-256 suffices for random 256-bit tokens; a slow hash only protects weak secrets."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, moderator: Moderator, name: str) -> tuple[ModeratorToken, str]:
    """A new API token for a moderator; the token itself is returned once and not stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ModeratorToken(
        moderator_id=moderator.id,
        name=name[:100],
        token_hash=hash_token(token),
        token_prefix=token[:12],
    )
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token: ModeratorToken) -> None:
    """Stop a token from working at commit."""
    token.revoked_at = utcnow()
    session.flush()


def moderator_for_token(session: Session, token: str) -> Moderator | None:
    """The active moderator a live token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    query = select(ModeratorToken).where(
        ModeratorToken.token_hash == digest, ModeratorToken.revoked_at.is_(None)
    )
    row = session.scalars(query).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return active_moderator(session, row.moderator_id)
