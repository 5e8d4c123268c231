"""Statements of reasons in the DSA Transparency Database's layout, and their submission.

The layout and enumerations are the database API's own (``tdb_statement.schema.json`` in this
package records where each comes from). Submission posts batches of at most 100 to
``<base>/api/v1/statements`` with the platform's bearer token. Before every attempt each
statement's PUID is looked up (``GET <base>/api/v1/statement/existing-puid/<puid>``: 302 when
the database has it), so a batch whose answer was lost is never sent twice; failed attempts
(no answer, 429, 5xx) are retried with a growing pause.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import StatementOfReasons

SCHEMA_PATH = Path(__file__).with_name("tdb_statement.schema.json")
BATCH = 100
ATTEMPTS = 4
TIMEOUT = 30.0
# The Transparency Database takes the EU's official languages, upper case.
EU_LANGUAGES = frozenset(
    json.loads(SCHEMA_PATH.read_text())["properties"]["content_language"]["enum"][1:]
)
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ExportError(ValueError):
    """The export was asked with bad input."""


def statement_payload(statement: StatementOfReasons) -> dict[str, Any]:
    """One statement as the Transparency Database's API takes it (no personal data)."""
    payload: dict[str, Any] = {
        "decision_ground": statement.decision_ground,
        "category": statement.category,
        "content_type": ["CONTENT_TYPE_TEXT"],
        "content_date": _day(statement.content_date),
        "application_date": _day(statement.application_date),
        "decision_facts": statement.decision_facts,
        "source_type": statement.source_type,
        "automated_detection": "Yes" if statement.automated_detection else "No",
        "automated_decision": statement.automated_decision,
        "puid": statement.puid,
    }
    if statement.decision_visibility:
        payload["decision_visibility"] = [statement.decision_visibility]
        if statement.end_date:
            payload["end_date_visibility_restriction"] = _day(statement.end_date)
    if statement.decision_account:
        payload["decision_account"] = statement.decision_account
        payload["account_type"] = "ACCOUNT_TYPE_PRIVATE"
        if statement.end_date:
            payload["end_date_account_restriction"] = _day(statement.end_date)
    if statement.illegal_content_legal_ground:
        payload["illegal_content_legal_ground"] = statement.illegal_content_legal_ground
        payload["illegal_content_explanation"] = statement.illegal_content_explanation
    if statement.incompatible_content_ground:
        payload["incompatible_content_ground"] = statement.incompatible_content_ground
        payload["incompatible_content_explanation"] = statement.incompatible_content_explanation
        payload["incompatible_content_illegal"] = "No"
    language = (statement.content_language or "").upper()
    if language in EU_LANGUAGES:
        payload["content_language"] = language
    return payload


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def statements_in_period(
    session: Session,
    site_ids: Iterable[int] | None,
    since: datetime,
    until: datetime,
    *,
    unsubmitted_only: bool = False,
) -> list[StatementOfReasons]:
    """The statements issued in ``[since, until)`` on these sites (None: every site)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ExportError("since and until need a time zone")
    if until <= since:
        raise ExportError("until must be after since")
    query = select(StatementOfReasons).where(
        StatementOfReasons.created_at >= since, StatementOfReasons.created_at < until
    )
    if site_ids is not None:
        query = query.where(StatementOfReasons.site_id.in_(sorted(site_ids)))
    if unsubmitted_only:
        query = query.where(StatementOfReasons.submitted_at.is_(None))
    return list(session.scalars(query.order_by(StatementOfReasons.id)))


def export(statements: Sequence[StatementOfReasons]) -> list[dict[str, Any]]:
    """The statements' payloads, in order."""
    return [statement_payload(statement) for statement in statements]


# --- Submission -------------------------------------------------------------------------------


class SubmitError(RuntimeError):
    """The Transparency Database refused a batch, or never answered it."""


@dataclass
class Submitted:
    """What one submission run did."""

    sent: int = 0
    already_there: int = 0
    attempts: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class TransparencyClient:
    """The Transparency Database's statement API at ``base_url`` with a platform's token."""

    base_url: str
    token: str
    http: requests.Session = field(default_factory=requests.Session)
    timeout: float = TIMEOUT

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def exists(self, puid: str) -> bool:
        """Whether the database already holds a statement with this PUID."""
        url = f"{self.base_url.rstrip('/')}/api/v1/statement/existing-puid/{quote(puid, safe='')}"
        answer = self.http.get(
            url, headers=self._headers(), timeout=self.timeout, allow_redirects=False
        )
        if answer.status_code in (200, 302):
            return True
        if answer.status_code == 404:
            return False
        raise _Retryable(f"PUID lookup answered {answer.status_code}")

    def store(self, payloads: list[dict[str, Any]]) -> dict[str, str]:
        """Post one batch; returns the database's uuid per PUID."""
        url = f"{self.base_url.rstrip('/')}/api/v1/statements"
        answer = self.http.post(
            url, json={"statements": payloads}, headers=self._headers(), timeout=self.timeout
        )
        if answer.status_code in RETRY_STATUSES:
            raise _Retryable(f"the database answered {answer.status_code}")
        if answer.status_code != 201:
            raise SubmitError(
                f"the database refused the batch ({answer.status_code}): {answer.text[:500]}"
            )
        created = answer.json().get("statements", [])
        return {str(row.get("puid")): str(row.get("uuid") or "") for row in created}


class _Retryable(Exception):
    """Worth another attempt: no answer, or a temporary refusal."""


def submit(
    session: Session,
    statements: Sequence[StatementOfReasons],
    client: TransparencyClient,
    *,
    attempts: int = ATTEMPTS,
    delay: float = 1.0,
    checkpoint: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Submitted:
    """Send the statements not yet submitted, in batches; ``checkpoint`` runs after each
    batch (the CLI commits there, so a later failure keeps what was sent)."""
    result = Submitted()
    pending = [s for s in statements if s.submitted_at is None]
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        _submit_batch(session, batch, client, result, attempts, delay, sleep)
        result.batches += 1
        session.flush()
        checkpoint()
    return result


def _submit_batch(
    session: Session,
    batch: list[StatementOfReasons],
    client: TransparencyClient,
    result: Submitted,
    attempts: int,
    delay: float,
    sleep: Callable[[float], None],
) -> None:
    for attempt in range(attempts):
        result.attempts += 1
        try:
            _attempt(batch, client, result)
            return
        except (_Retryable, requests.ConnectionError, requests.Timeout) as exc:
            result.errors.append(str(exc))
            if attempt + 1 < attempts:
                sleep(delay * 2**attempt)
    raise SubmitError(f"gave up after {attempts} attempts: {result.errors[-1]}")


def _attempt(
    batch: list[StatementOfReasons], client: TransparencyClient, result: Submitted
) -> None:
    now = utcnow()
    to_send = []
    for statement in batch:
        if statement.submitted_at is not None:
            continue
        if client.exists(statement.puid):
            statement.submitted_at = now
            result.already_there += 1
        else:
            to_send.append(statement)
    if not to_send:
        return
    created = client.store(export(to_send))
    for statement in to_send:
        statement.submitted_at = now
        statement.transparency_id = created.get(statement.puid) or None
    result.sent += len(to_send)
