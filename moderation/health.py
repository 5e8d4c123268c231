"""Liveness for load balancers and process managers."""

from __future__ import annotations

from flask import Blueprint, jsonify

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    """The process is up; checks no dependency."""
    return jsonify(status="ok")
