"""The portal's URLs with the tokens page mounted, until portal/urls.py includes it."""

from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [path("tokens/", include("portal.token_urls")), *portal_urlpatterns]
