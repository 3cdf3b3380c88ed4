"""The helpers every page view uses: sign-in that copes with htmx, role checks, refusals."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render, resolve_url
from django.utils.functional import cached_property
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails
from redis.exceptions import RedisError

from portal.core.errors import DomainError
from portal.core.types import User

# A view may stream (the auditor's CSV/JSON exports), so responses are HttpResponseBase.
View = Callable[..., HttpResponseBase]


def page(view: View) -> View:
    """``login_required`` that also copes with htmx.

    An htmx poll whose session ran out must not swap the login page into a fragment:
    it gets an ``HX-Redirect`` to the login page instead.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            htmx: HtmxDetails | None = getattr(request, "htmx", None)
            if htmx:
                back = htmx.current_url_abs_path or request.get_full_path()
                login = resolve_url(settings.LOGIN_URL)
                return HttpResponseClientRedirect(redirect_to_login(back, login)["Location"])
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def require(check: Callable[[Any], bool], message: str) -> Callable[[View], View]:
    """Refuse (403, with ``message`` on the page) users for whom ``check`` is false."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def refused(request: HttpRequest, message: str, status: int = 403) -> HttpResponse:
    """The 403 page with the service's own explanation."""
    return render(request, "403.html", {"exception": message}, status=status)


def carry_out(request: HttpRequest, to: str, action: Callable[[], str]) -> HttpResponse:
    """A page's one service call: ``action`` makes it and returns what to tell the user; a
    refusal (``DomainError``) is told instead. Either way, on to the page named ``to``.
    A ``ValidationError`` is left to the caller, to show on its form."""
    try:
        done = action()
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect(to)


def add_service_error(form: forms.Form, exc: ValidationError | DomainError) -> None:
    """Show what a service refused on the form: its field errors on the fields the form
    has, the rest on top."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    elif isinstance(exc, ValidationError):
        form.add_error(None, exc.messages)
    else:
        form.add_error(None, str(exc))


def signed_in_user(request: HttpRequest) -> User:
    """The user of a request only signed-in users reach (the admin's, a page's)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def _cached(key: str) -> bool:
    try:
        return bool(cache.get(key))
    except (RedisError, OSError):
        return False  # the cache is down: the page counts, as it would without one


def _remember(key: str, seconds: int) -> None:
    with contextlib.suppress(RedisError, OSError):  # a page is not refused for it
        cache.set(key, True, seconds)


class CappedPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator that counts at most ``CAP`` rows (``count(*)`` over a LIMIT): on a big
    table a full count per page view costs more than the page. Past the cap the page
    says "more than CAP" (``capped``) and offers that many rows' worth of pages.

    For lists that only grow (the request history, the audit log): a query once found
    past the cap is taken to stay there for ``CAPPED_SECONDS``."""

    CAP = 10_000
    # A query found to match more than CAP rows is remembered this long: counting 10,001
    # rows of a broad filter (free text on 100,000 requests) cost 36 ms, more than the
    # rest of the page, and history only grows, so "more than CAP" stays true.
    CAPPED_SECONDS = 300

    @cached_property
    def count(self) -> int:
        rows: Any = self.object_list  # a QuerySet
        capped = rows.order_by()[: self.CAP + 1]
        try:
            sql, params = capped.query.sql_with_params()
        except EmptyResultSet:  # a filter that can match nothing (no such person)
            return 0
        key = "capped-count:" + hashlib.sha256(f"{sql}\0{params!r}".encode()).hexdigest()
        if _cached(key):
            return self.CAP + 1
        counted: int = capped.count()
        if counted > self.CAP:
            _remember(key, self.CAPPED_SECONDS)
        return counted

    @property
    def capped(self) -> bool:
        return self.count > self.CAP
