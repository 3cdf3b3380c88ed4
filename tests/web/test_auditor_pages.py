"""The auditor's pages: history filters and sorting, timelines, people, accounts, failover
reports, the integrity badge. Approvers see them too; engineers do not."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms
from django.db import transaction
from django.template import Context, Template
from django.test.html import parse_html
from django.urls import reverse
from django.utils import timezone

from portal import audit
from portal.audit import integrity
from portal.auditor import history
from portal.models import AuditEvent, ChainVerification
from portal.templatetags import audit_tags, portal_tags
from tests.tampering import triggers_disabled
from tests.web.conftest import HTMX

HISTORY = reverse("auditor-history")


def shown(client, **params) -> list[int]:
    response = client.get(HISTORY, params)
    assert response.status_code == 200, response.content.decode()[-2000:]
    return [req.pk for req in response.context["page_obj"].object_list]


def ids(*requests) -> list[int]:
    return [r.pk for r in requests]


class TestHistoryFilters:
    def test_everything_newest_first(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor) == ids(a.r5, a.r4, a.r3, a.r2, a.r1)

    def test_by_person(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, person="engineer") == ids(a.r3, a.r1)
        assert shown(as_auditor, person="ali") == ids(a.r5, a.r4)  # a prefix
        assert shown(as_auditor, person="ONCALL@example.com") == ids(a.r2)  # email, any case
        assert shown(as_auditor, person="nobody") == []

    def test_by_account_and_level(self, as_auditor, archive):
        a = archive
        payments = a.plan.accounts["prod-payments"].pk
        ops = a.plan.levels["Ops"].pk
        assert shown(as_auditor, account=payments) == ids(a.r5, a.r4, a.r1)
        assert shown(as_auditor, level=ops) == ids(a.r4, a.r2)
        assert shown(as_auditor, account=payments, level=ops) == ids(a.r4)

    def test_by_status(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, status=["expired", "revoked"]) == ids(a.r4, a.r2, a.r1)
        assert shown(as_auditor, status="denied") == ids(a.r3)

    def test_by_failover_and_kind(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, failover=a.real.pk) == ids(a.r2, a.r1)
        assert shown(as_auditor, kind="drill") == ids(a.r5, a.r4, a.r3)
        assert shown(as_auditor, kind="real") == ids(a.r2, a.r1)

    def test_the_failover_choices_name_each_newest_first_and_keep_the_choice(
        self, as_auditor, archive
    ):
        a = archive
        html = as_auditor.get(HISTORY, {"failover": a.real.pk}).content.decode()
        real = f'<option value="{a.real.pk}" selected>Failover #{a.real.pk}</option>'
        drill = f'<option value="{a.drill.pk}">Drill #{a.drill.pk}</option>'
        assert real in html and drill in html
        assert html.index(drill) < html.index(real)  # the drill was opened later
        response = as_auditor.get(HISTORY, {"failover": a.drill.pk + a.real.pk + 1})
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()

    def test_by_date_filed(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, date_from="2025-06-11", date_to="2025-06-11") == ids(a.r4)
        assert shown(as_auditor, date_from="2025-06-01") == ids(a.r5, a.r4, a.r3)
        assert shown(as_auditor, date_to="2025-03-31") == ids(a.r2, a.r1)

    def test_by_access_held_in_the_dates(self, as_auditor, archive):
        a = archive
        held = {"dates": "held"}
        assert shown(as_auditor, date_from="2025-03-01", date_to="2025-03-01", **held) == ids(
            a.r2, a.r1
        )
        assert shown(as_auditor, date_from="2025-06-11", **held) == ids(a.r4)
        # r4 ended on the 11th: nobody held access on the 12th.
        assert shown(as_auditor, date_from="2025-06-12", **held) == []

    def test_free_text_over_justification_and_ticket(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, q="kafka") == ids(a.r1)
        assert shown(as_auditor, q="drill-7") == ids(a.r3)
        assert shown(as_auditor, q="REPLICA") == ids(a.r2)

    def test_combined(self, as_auditor, archive):
        a = archive
        payments = a.plan.accounts["prod-payments"].pk
        assert shown(as_auditor, account=payments, status="expired", kind="drill") == ids(a.r4)

    def test_sorting(self, as_auditor, archive):
        a = archive
        assert shown(as_auditor, sort="filed") == ids(a.r1, a.r2, a.r3, a.r4, a.r5)
        people = [
            r.requester.username
            for r in as_auditor.get(HISTORY, {"sort": "person"}).context["page_obj"]
        ]
        assert people == ["alice", "alice", "engineer", "engineer", "oncall"]
        # Newest grant first; requests never granted last.
        assert shown(as_auditor, sort="-granted")[:3] == ids(a.r4, a.r2, a.r1)
        assert set(shown(as_auditor, sort="-granted")[3:]) == set(ids(a.r3, a.r5))
        assert shown(as_auditor, sort="granted")[:3] == ids(a.r1, a.r2, a.r4)

    def test_sort_links_toggle(self, as_auditor, archive):
        headers = as_auditor.get(HISTORY, {"sort": "-filed"}).context["headers"]
        filed = next(h for h in headers if h["key"] == "filed")
        assert filed["active"] and filed["descending"] and filed["next"] == "filed"
        person = next(h for h in headers if h["key"] == "person")
        assert person["next"] == "person"

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"date_from": "2025-06-02", "date_to": "2025-06-01"}, "date_to"),
            ({"status": "bogus"}, "status"),
            ({"date_from": "yesterday"}, "date_from"),
            ({"account": "999999"}, "account"),
            ({"sort": "password"}, "sort"),
        ],
    )
    def test_bad_filters_are_form_errors(self, as_auditor, archive, params, field):
        response = as_auditor.get(HISTORY, params)
        assert response.status_code == 400
        assert field in response.context["form"].errors
        assert response.context["page_obj"] is None

    def test_paginated_with_bounded_queries(
        self, as_auditor, archive, django_assert_max_num_queries
    ):
        from tests.web.auditor_fixtures import make_request

        for n in range(30):
            make_request(
                archive.alice, archive.plan.roles[("prod-data", "RO")], archive.real,
                "expired", f"2025-01-01T10:{n:02d}:00",
                granted=f"2025-01-01T11:{n:02d}:00", ended=f"2025-01-01T12:{n:02d}:00",
            )  # fmt: skip
        with django_assert_max_num_queries(17):  # approvals and approvers: one query
            response = as_auditor.get(HISTORY)
        page = response.context["page_obj"]
        assert len(page.object_list) == 25 and page.paginator.count == 35
        assert len(as_auditor.get(HISTORY, {"page": 2}).context["page_obj"].object_list) == 10
        assert as_auditor.get(HISTORY, {"page": 99}).status_code == 200

    def test_approvers_see_it_engineers_do_not(self, as_approver, as_engineer, archive):
        assert len(shown(as_approver)) == 5
        assert as_engineer.get(HISTORY).status_code == 403

    def test_the_page_links_rows_to_timeline_person_and_account(self, as_auditor, archive):
        content = as_auditor.get(HISTORY).content.decode()
        a = archive
        assert reverse("auditor-request", args=[a.r1.pk]) in content
        assert reverse("auditor-person", args=[a.alice.pk]) in content
        assert reverse("auditor-account", args=[a.plan.accounts["prod-data"].pk]) in content


class TestTimeline:
    def test_shows_every_event_with_its_hash_check(self, as_auditor, archive):
        url = reverse("auditor-request", args=[archive.r1.pk])
        response = as_auditor.get(url)
        assert response.status_code == 200
        assert [e.action for e, ok in response.context["events"]] == [
            "request.filed",
            "request.approved",
        ]
        assert all(ok for _, ok in response.context["events"])
        content = response.content.decode()
        assert "approver1" in content and "Kafka consumer lag" in content
        assert reverse("request-detail", args=[archive.r1.pk]) in content
        assert "60 min" in content  # held 10:05 to 11:05:10 (Okta's removal)

    def test_an_altered_event_is_flagged(self, as_auditor, archive):
        event = AuditEvent.objects.get(action="request.approved")
        with triggers_disabled():
            AuditEvent.objects.filter(pk=event.pk).update(actor_label="someone-else")
        response = as_auditor.get(reverse("auditor-request", args=[archive.r1.pk]))
        assert [ok for _, ok in response.context["events"]] == [True, False]
        assert "altered" in response.content.decode()

    def test_unknown_request_is_404(self, as_auditor, archive):
        assert as_auditor.get(reverse("auditor-request", args=[999999])).status_code == 404


class TestPersonAndAccount:
    def test_a_persons_history(self, as_auditor, archive, approver):
        from portal.accounts import roles

        roles.grant_role(archive.alice, "approver", system="test")
        response = as_auditor.get(reverse("auditor-person", args=[archive.alice.pk]))
        assert response.status_code == 200
        context = response.context
        assert [r.pk for r in context["requests"]] == ids(archive.r5, archive.r4)
        assert [e.action for e in context["role_events"]] == ["role.granted"]
        assert context["groups"] == ["approvers"]
        decisions = as_auditor.get(reverse("auditor-person", args=[approver.pk])).context[
            "decisions"
        ]
        assert {r.pk for r in decisions} == set(ids(archive.r1, archive.r2, archive.r4))

    def test_a_persons_activity_is_their_audit_events(self, as_auditor, archive, engineer):
        events = as_auditor.get(reverse("auditor-person", args=[engineer.pk])).context["page_obj"]
        assert [e.action for e in events.object_list] == ["request.filed"]

    def test_an_accounts_history(self, as_auditor, archive):
        account = archive.plan.accounts["prod-payments"]
        response = as_auditor.get(reverse("auditor-account", args=[account.pk]))
        assert response.status_code == 200
        assert [r.pk for r in response.context["page_obj"]] == ids(
            archive.r5, archive.r4, archive.r1
        )
        assert response.context["held_count"] == 2
        assert response.context["people_count"] == 2

    def test_unknown_ids_are_404(self, as_auditor, archive):
        assert as_auditor.get(reverse("auditor-person", args=[999999])).status_code == 404
        assert as_auditor.get(reverse("auditor-account", args=[999999])).status_code == 404


class TestFailovers:
    def test_the_list_counts_requests_and_grants(self, as_auditor, archive):
        response = as_auditor.get(reverse("auditor-failovers"))
        rows = {f.pk: f for f in response.context["page_obj"].object_list}
        assert rows[archive.real.pk].request_count == 2
        assert rows[archive.real.pk].grant_count == 2
        assert rows[archive.drill.pk].grant_count == 1

    def test_each_links_to_its_report_and_its_requests(self, as_auditor, archive):
        """The report itself is the failover feature's (federation/report.py)."""
        content = as_auditor.get(reverse("auditor-failovers")).content.decode()
        assert reverse("failover-report", args=[archive.real.pk]) in content
        assert reverse("failover-report-json", args=[archive.drill.pk]) in content
        assert f"{HISTORY}?failover={archive.real.pk}" in content
        timeline = as_auditor.get(reverse("auditor-request", args=[archive.r1.pk]))
        assert reverse("failover-report", args=[archive.real.pk]) in timeline.content.decode()

    def test_auditors_can_read_the_reports(self, as_auditor, archive):
        url = reverse("failover-report", args=[archive.drill.pk])
        assert as_auditor.get(url).status_code == 200


class TestIntegrityBadge:
    def test_not_verified_yet(self, as_auditor, archive):
        assert "Audit chain not verified yet." in as_auditor.get(HISTORY).content.decode()

    def test_intact_after_a_verification(self, as_auditor, archive):
        integrity.run("test", use_checkpoints=False)
        with transaction.atomic():
            audit.record("test.after", ("thing", 1))
        content = as_auditor.get(HISTORY).content.decode()
        assert "Audit chain intact." in content
        assert "4 events up to #4" in content and "1 newer event not yet verified" in content

    def test_broken(self, as_auditor, archive):
        with triggers_disabled():
            AuditEvent.objects.filter(seq=2).update(payload={})
        integrity.run("test", use_checkpoints=False)
        content = as_auditor.get(reverse("audit-log")).content.decode()
        assert "Audit chain broken at #2:" in content

    def test_stale(self, as_auditor, archive):
        integrity.run("test", use_checkpoints=False)
        ChainVerification.objects.update(finished_at=timezone.now() - dt.timedelta(days=3))
        assert "not verified recently" in as_auditor.get(HISTORY).content.decode()

    def test_verify_now_queues_one_verification(self, as_auditor, archive, monkeypatch,
                                                django_capture_on_commit_callbacks):  # fmt: skip
        from portal import tasks

        queued = []
        monkeypatch.setattr(
            "portal.queue.verify_audit_chain", lambda *a, on_failure: queued.append(a)
        )
        url = reverse("auditor-integrity-verify")
        with django_capture_on_commit_callbacks(execute=True):
            response = as_auditor.post(url, {"next": reverse("audit-log")})
        assert response.status_code == 302 and response["Location"] == reverse("audit-log")
        [(trigger, run_id)] = queued
        assert trigger == "verify now (auditor)"
        # The worker runs it; meanwhile the badge polls and a second click queues nothing.
        badge = as_auditor.post(url, headers=HTMX)
        assert b"Verification running since" in badge.content and b"every 3s" in badge.content
        assert len(queued) == 1
        tasks.verify_audit_chain(trigger, run_id)
        badge = as_auditor.get(reverse("auditor-integrity"), headers=HTMX).content.decode()
        assert "Audit chain intact." in badge and "every 3s" not in badge

    def test_verify_now_with_the_broker_down_says_so(
        self, as_auditor, archive, monkeypatch, django_capture_on_commit_callbacks
    ):
        from kombu.exceptions import OperationalError

        from portal.celery import app

        def down(*args, **kwargs):
            raise OperationalError("connection refused")

        monkeypatch.setattr(app, "send_task", down)
        with django_capture_on_commit_callbacks(execute=True):
            response = as_auditor.post(reverse("auditor-integrity-verify"))
        assert response.status_code == 302
        badge = as_auditor.get(reverse("auditor-integrity")).content.decode()
        assert "could not queue the verification: connection refused" in badge

    def test_verify_now_refuses_foreign_redirects(self, as_auditor, archive, monkeypatch):
        monkeypatch.setattr("portal.queue.verify_audit_chain", lambda *a, **k: None)
        response = as_auditor.post(
            reverse("auditor-integrity-verify"), {"next": "https://evil.example/"}
        )
        assert response["Location"] == HISTORY


AUDITOR_PAGES = [
    ("auditor-history", []),
    ("auditor-failovers", []),
    ("auditor-integrity", []),
]


@pytest.mark.parametrize("name, args", AUDITOR_PAGES)
def test_engineers_are_refused(as_engineer, archive, name, args):
    assert as_engineer.get(reverse(name, args=args)).status_code == 403


def test_signed_out_visitors_go_to_the_login(client, archive):
    response = client.get(HISTORY)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    "data",
    [{}, {"status": ["expired", "revoked"], "sort": "-granted", "kind": "drill"}],
    ids=["unbound defaults", "chosen values"],
)
def test_the_filter_forms_selects_are_the_html_django_would_render(archive, data):
    """QuickSelect writes the options itself (issue 13: the history page's cost); the
    result is Django's own <select>: the same attributes, options, labels and choices."""
    form = history.HistoryFilter({**data, "failover": archive.drill.pk, "account": ""})
    form.is_valid()
    for bound in form:
        if not isinstance(bound.field.widget, history.QuickSelect):
            continue
        ours = bound.as_widget()
        attrs = bound.build_widget_attrs({"id": bound.auto_id})
        django = forms.Widget.render(bound.field.widget, bound.html_name, bound.value(), attrs)
        assert parse_html(ours) == parse_html(django), bound.name


def test_when_is_a_time_element_in_the_portals_zone():
    moment = dt.datetime(2025, 6, 10, 8, 5, 9, 120000, tzinfo=dt.UTC)
    html = portal_tags.when(moment)
    local = timezone.localtime(moment)
    assert html == (
        f'<time datetime="2025-06-10T08:05:09.120000+00:00" '
        f'title="{local:%Y-%m-%d %H:%M:%S} {local:%Z}">{local:%Y-%m-%d %H:%M}</time>'
    )
    assert portal_tags.when(None) == "—"


# The history table's rows as history.html wrote them through Django's template engine
# before history_rows took them over (issue 13): the reference the tag must match.
HISTORY_ROWS_TEMPLATE = """{% load portal_tags %}{% for req in rows %}
    <tr>
      <td data-label="Request"><a href="{% url 'auditor-request' req.pk %}">#{{ req.pk }}</a>{% if req.failover.is_drill %} <span class="badge badge-drill">Drill</span>{% endif %}</td>
      <td data-label="Filed" class="nowrap">{{ req.created_at|when }}</td>
      <td data-label="Requester"><a href="{% url 'auditor-person' req.requester_id %}">{{ req.requester.get_username }}</a></td>
      <td data-label="Account"><a href="{% url 'auditor-account' req.role.workload_account_id %}">{{ req.role.workload_account.name }}</a> <span class="muted mono small">{{ req.role.workload_account.account_id }}</span></td>
      <td data-label="Level">{{ req.role.level.name }}</td>
      <td data-label="Status">{% status_badge req.status req.get_status_display %}</td>
      <td data-label="Granted" class="nowrap">{{ req.activated_at|when }}</td>
      <td data-label="Ended" class="nowrap">{% if req.ended_at %}{{ req.ended_at|when }}{% else %}—{% endif %}</td>
      <td data-label="Approved by">{% for a in req.approvals.all %}{{ a.approver.get_username }}{% if not forloop.last %}, {% endif %}{% empty %}<span class="muted">—</span>{% endfor %}</td>
      <td data-label="Ticket">{{ req.ticket }}</td>
    </tr>
  {% endfor %}"""  # noqa: E501


def test_the_history_rows_are_the_html_the_template_wrote(archive):
    """history_rows writes the table's rows itself (issue 13: the history page's cost):
    the same HTML as the template did, markup in a ticket or a name escaped, for drills,
    rows without approvals, never granted and not ended."""
    a = archive
    a.r3.ticket = '<script>alert("x")</script> & co'
    a.r3.save(update_fields=["ticket"])
    a.r1.requester.username = "o'brien<b>"
    a.r1.requester.save(update_fields=["username"])
    page = history.page_of(history.filtered({}), 1, 25)
    rows = page.object_list
    assert {req.pk for req in rows} == {r.pk for r in (a.r1, a.r2, a.r3, a.r4, a.r5)}
    ours = audit_tags.history_rows(rows)
    django = Template(HISTORY_ROWS_TEMPLATE).render(Context({"rows": rows}))
    assert parse_html(ours) == parse_html(django)
    assert "&lt;script&gt;" in ours and "o&#x27;brien&lt;b&gt;" in ours
    assert "<script>" not in ours
