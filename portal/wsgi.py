import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Filing looks the requester up in Okta: import the adapter (the okta SDK takes seconds)
# as each web worker starts, not on its first request in the middle of an incident.
from federation.idp import load_identity_provider  # noqa: E402 - needs Django set up

load_identity_provider()
