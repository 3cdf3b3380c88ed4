"""The auditors' request history: one filter form, one query, used by the page and the exports.

Filters resolve small tables (people, roles) to ids first, so the big query on
``AccessRequest`` only meets indexed columns (see requests_app migration
``auditor_indexes`` and bench/bench_auditor_history.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.paginator import Page
from django.db.models import F, Prefetch, Q, QuerySet
from django.forms.models import ModelChoiceIterator
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.choices import flatten_choices
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from federation.models import EmergencyRole, Failover, Level, WorkloadAccount
from portal.core.web import CappedPaginator
from requests_app.models import AccessRequest, Approval, Status

# sort key in the URL -> columns (the id breaks ties, so pages never overlap).
SORTS: dict[str, tuple[str, ...]] = {
    "filed": ("created_at", "id"),
    "person": ("requester__username", "created_at", "id"),
    "account": ("role__workload_account__name", "created_at", "id"),
    "level": ("role__level__name", "created_at", "id"),
    "status": ("status", "created_at", "id"),
    "granted": ("activated_at", "id"),
    "ended": ("ended_at", "id"),
}
DEFAULT_SORT = "-filed"
SORT_CHOICES = [(key, key) for name in SORTS for key in (name, f"-{name}")]
# Cap on the people a "person" filter may match (it matches name prefixes).
MAX_PEOPLE = 500


class QuickSelect(forms.Select):
    """A <select> written in Python: Django's widget renders every option through its own
    template (and builds a dict of attributes for each), which made the filter form (a
    failover list that grows with every drill) the costliest part of the history page.
    The same HTML as Django's (``tests/web/test_auditor_pages.py``)."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        final_attrs = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            final_attrs["multiple"] = True
        chosen = set(self.format_value(value))
        parts: list[str] = [format_html('<select name="{}"{}>', name, flatatt(final_attrs))]
        options: Iterable[tuple[Any, Any]] = flatten_choices(self.choices)  # groups flattened
        for option_value, label in options:
            option_value = "" if option_value is None else str(option_value)
            selected = " selected" if option_value in chosen else ""
            parts.append(
                f'<option value="{escape(option_value)}"{selected}>{escape(label)}</option>'
            )
        parts.append("</select>")
        return mark_safe("".join(parts))  # noqa: S308 -- every value and label escaped


class QuickSelectMultiple(QuickSelect, forms.SelectMultiple):
    pass


class ListedChoices(ModelChoiceIterator):  # type: ignore[type-arg]
    """A model choice list read with one plain query. Django's reads it with
    ``iterator()``: on PostgreSQL, outside a transaction, a WITH HOLD server-side cursor
    (declare, fetch, close) for a list of a few rows."""

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class ListedModelChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    iterator = ListedChoices


class HistoryFilter(forms.Form):
    person = forms.CharField(
        required=False,
        max_length=254,
        label="Person",
        help_text="Username or email, or how it starts.",
    )
    account = ListedModelChoiceField(
        WorkloadAccount.objects.order_by("number"),
        required=False,
        empty_label="Any account",
        widget=QuickSelect,
    )
    level = ListedModelChoiceField(
        Level.objects.all(), required=False, empty_label="Any level", widget=QuickSelect
    )
    status = forms.MultipleChoiceField(
        choices=Status.choices,
        required=False,
        widget=QuickSelectMultiple(attrs={"size": 3}),
        help_text="Ctrl/⌘-click to pick several.",
    )
    # Its options are set per form from two columns (see __init__): every drill adds one,
    # and a ModelChoiceField built a whole Failover (eleven timestamps) for each label.
    failover = forms.TypedChoiceField(coerce=int, required=False, widget=QuickSelect)
    kind = forms.ChoiceField(
        choices=[("", "Real and drills"), ("real", "Real failovers"), ("drill", "Drills")],
        required=False,
        widget=QuickSelect,
        label="Failover kind",
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    dates = forms.ChoiceField(
        choices=[("filed", "Filed in these dates"), ("held", "Held access in these dates")],
        required=False,
        widget=QuickSelect,
        label="Dates apply to",
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Justification or ticket contains",
    )
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, widget=QuickSelect)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        failovers = Failover.objects.order_by("-opened_at").values_list("pk", "is_drill")
        field = cast(forms.ChoiceField, self.fields["failover"])
        field.choices = [
            ("", "Any failover"),
            *((pk, Failover.label(pk, is_drill)) for pk, is_drill in failovers),
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        # Django's clean() returns cleaned_data, which its stubs allow to be None.
        cleaned = self.cleaned_data
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _people(text: str) -> list[int]:
    users = get_user_model().objects
    exact = Q(username__iexact=text) | Q(email__iexact=text)
    ids = list(users.filter(exact).values_list("pk", flat=True)[:MAX_PEOPLE])
    if ids:
        return ids
    prefix = Q(username__istartswith=text) | Q(email__istartswith=text)
    return list(users.filter(prefix).values_list("pk", flat=True)[:MAX_PEOPLE])


def _roles(account: WorkloadAccount | None, level: Level | None) -> list[int]:
    roles = EmergencyRole.objects.all()
    if account is not None:
        roles = roles.filter(workload_account=account)
    if level is not None:
        roles = roles.filter(level=level)
    return list(roles.values_list("pk", flat=True))


def filtered(data: dict[str, Any]) -> QuerySet[AccessRequest]:
    """The requests matching a valid form's ``cleaned_data``, sorted, not yet paginated."""
    requests: QuerySet[AccessRequest] = AccessRequest.objects.all()
    if data.get("person"):
        requests = requests.filter(requester_id__in=_people(data["person"].strip()))
    if data.get("account") or data.get("level"):
        requests = requests.filter(role_id__in=_roles(data.get("account"), data.get("level")))
    if data.get("status"):
        requests = requests.filter(status__in=data["status"])
    if data.get("failover"):
        requests = requests.filter(failover=data["failover"])
    if data.get("kind"):
        drills = Failover.objects.filter(is_drill=data["kind"] == "drill")
        requests = requests.filter(failover_id__in=drills.values("pk"))
    requests = _dated(requests, data)
    if data.get("q"):
        text = data["q"].strip()
        requests = requests.filter(Q(justification__icontains=text) | Q(ticket__icontains=text))
    return requests.order_by(*sort_columns(data.get("sort") or DEFAULT_SORT))


def _dated(requests: QuerySet[AccessRequest], data: dict[str, Any]) -> QuerySet[AccessRequest]:
    start = _day_start(data["date_from"]) if data.get("date_from") else None
    end = _day_start(data["date_to"] + dt.timedelta(days=1)) if data.get("date_to") else None
    if data.get("dates") == "held":
        # Held access at some moment in [start, end): granted before the end, not ended
        # before the start. Okta's removal (membership_removed_at) is the real end.
        if start or end:
            requests = requests.filter(activated_at__isnull=False)
        if end:
            requests = requests.filter(activated_at__lt=end)
        if start:
            requests = requests.filter(
                Q(ended_at__isnull=True)
                | Q(ended_at__gte=start)
                | Q(membership_removed_at__gte=start)
            )
        return requests
    if start:
        requests = requests.filter(created_at__gte=start)
    if end:
        requests = requests.filter(created_at__lt=end)
    return requests


# Sorting these puts the rows without a value last either way (never granted, not ended).
NULLABLE = frozenset({"activated_at", "ended_at"})


def sort_columns(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    ordered = []
    for column in SORTS.get(sort.lstrip("-"), SORTS["filed"]):
        expression = F(column)
        if column in NULLABLE:
            # Matches the PostgreSQL indexes of requests_app 0003 (activated_at DESC NULLS LAST).
            ordered.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        else:
            ordered.append(expression.desc() if descending else expression.asc())
    return ordered


def page_of(requests: QuerySet[AccessRequest], number: Any, size: int) -> Page[Any]:
    """One page of ``requests``, sorted and counted on ids alone, then loaded in full.

    Sorting narrow rows (the id and the sort key) instead of every joined column
    keeps the sort by person or account, and deep pages, cheap on 100,000 rows.
    """
    # A page counted on ids whose object_list becomes the requests they name.
    pks = requests.values_list("pk", flat=True)
    page: Page[Any] = CappedPaginator(pks, size).get_page(number)
    ids = list(page.object_list)
    loaded = {req.pk: req for req in for_table(AccessRequest.objects.filter(pk__in=ids))}
    page.object_list = [loaded[pk] for pk in ids if pk in loaded]
    return page


def for_table(requests: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """What a table of requests shows (the history, a person's, an account's): requester,
    role, account, level, failover, and the approvals with their approvers in one query.
    Nothing more: each relation joined costs PostgreSQL planning time (the two below were
    5 ms of a history page's 6 ms query)."""
    return requests.select_related(
        "requester", "role__workload_account", "role__level", "failover"
    ).prefetch_related(Prefetch("approvals", Approval.objects.select_related("approver")))


def for_display(requests: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """One request's timeline: the table's relations, and who decided and who ended it."""
    return for_table(requests).select_related("decided_by", "ended_by")
