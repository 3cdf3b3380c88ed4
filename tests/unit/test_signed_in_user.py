"""``portal.core.web.signed_in_user``: the typed user of a request only signed-in users
reach (the admin's audit records take it as their actor)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils.functional import SimpleLazyObject

from portal.core.web import signed_in_user


def test_the_signed_in_user_behind_the_middlewares_lazy_object():
    user = User(username="approver1")
    request = RequestFactory().get("/admin/")
    # AuthenticationMiddleware sets request.user to a SimpleLazyObject.
    request.user = SimpleLazyObject(lambda: user)
    assert signed_in_user(request) == user


def test_an_anonymous_request_is_refused():
    request = RequestFactory().get("/admin/")
    request.user = AnonymousUser()
    with pytest.raises(PermissionDenied):
        signed_in_user(request)
