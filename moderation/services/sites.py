"""Sites and their API keys: keys are shown once and stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.models import Site
from moderation.policy import SitePolicy
from moderation.services.row_cache import RowCache

KEY_PREFIX = "msk_"
# Every comment authenticates: a site read in the last few seconds is not read again. A
# rotation (or any change to a site) in this process clears the copies at once; other
# processes stop accepting the old key when their copy expires.
SITE_CACHE_SECONDS = 5.0
_sites_by_key: RowCache[Site] = RowCache(Site, ttl=SITE_CACHE_SECONDS)


def generate_api_key() -> str:
    """A new secret site key with 256 bits of entropy."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 is enough for random 256-bit keys; a slow hash only protects weak secrets."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_site(session: Session, name: str, policy: SitePolicy | None = None) -> tuple[Site, str]:
    """Add a site; returns it with its key, which is not stored and cannot be shown again."""
    key = generate_api_key()
    site = Site(
        name=name,
        api_key_hash=hash_api_key(key),
        api_key_prefix=key[:12],
        policy=(policy or SitePolicy()).model_dump(mode="json"),
    )
    session.add(site)
    session.flush()
    return site, key


def rotate_api_key(session: Session, site: Site) -> str:
    """Give a site a new key; the old one stops working at commit."""
    key = generate_api_key()
    site.api_key_hash = hash_api_key(key)
    site.api_key_prefix = key[:12]
    session.flush()
    return key


def site_for_api_key(session: Session, key: str) -> Site | None:
    """The site a key belongs to, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    digest = hash_api_key(key)
    site = session.scalars(select(Site).where(Site.api_key_hash == digest)).one_or_none()
    if site is None or not hmac.compare_digest(site.api_key_hash, digest):
        return None
    _sites_by_key.put(digest, site)
    return site


def cached_site(session: Session, key: str) -> Site | None:
    """The site of this key from the process's recent copies, without a query; or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return _sites_by_key.get(session, hash_api_key(key))


def site_by_name(session: Session, name: str) -> Site | None:
    """The site with this name, or None."""
    return session.scalars(select(Site).where(Site.name == name)).one_or_none()
