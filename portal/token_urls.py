"""Mounted at ``tokens/`` by portal/urls.py."""

from django.urls import path

from portal import token_views

urlpatterns = [
    path("", token_views.token_list, name="tokens"),
    path("<int:pk>/revoke/", token_views.token_revoke, name="token-revoke"),
]
