"""Types the layers share in annotations: the portal's user and the requests that carry one.

``settings.AUTH_USER_MODEL`` is Django's own ``auth.User``; every foreign key to a person
points at it, so services take a ``User`` (not ``AbstractBaseUser``, which has no
``email``, groups or permissions).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

__all__ = ["ApiRequest", "SignedInRequest", "User"]


class SignedInRequest(HttpRequest):
    """A page request behind ``portal.core.web.page`` (so signed in), as django-htmx's
    middleware leaves it (``htmx``)."""

    user: User
    htmx: HtmxDetails


class ApiRequest(HttpRequest):
    """A JSON API request: ninja sets ``auth`` to what ``portal.api``'s authentication
    returned, the signed-in user (token owner or session user)."""

    auth: User
