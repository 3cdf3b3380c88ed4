"""The domain's refusals; views and the API turn each into one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the refusals a service can raise."""

    http_status = 400


class NotAllowed(DomainError):
    """The actor may not do this (403)."""

    http_status = 403


class InvalidTransition(DomainError):
    """The object is not in a state that allows this (409)."""

    http_status = 409


class Conflict(DomainError):
    """Something else is in the way: no failover open, one already open (409)."""

    http_status = 409
