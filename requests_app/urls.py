from django.urls import path, register_converter

from requests_app import break_glass_views, bulk_views, extension_views, views


class ActionConverter:
    """Only the actions a person can trigger from a request page (``views.ACTIONS``)."""

    regex = "|".join(views.ACTIONS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ActionConverter, "request_action")

urlpatterns = [
    path("requests/", views.request_list, name="request-list"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/status/", views.request_status, name="request-status"),
    path(
        "requests/<int:pk>/<request_action:action>/",
        views.request_action,
        name="request-action",
    ),
    path("approvals/", views.approvals, name="approvals"),
    path(
        "requests/<int:pk>/break-glass/",
        break_glass_views.request_break_glass,
        name="request-break-glass",
    ),
    path("requests/<int:pk>/review/", break_glass_views.request_review, name="request-review"),
    path("approvals/approve/", bulk_views.approve_selected, name="approvals-approve"),
    path("requests/<int:pk>/extend/", extension_views.request_extend, name="request-extend"),
    path(
        "requests/<int:pk>/extensions/<int:ext_id>/<str:action>/",
        extension_views.extension_action,
        name="extension-action",
    ),
]
