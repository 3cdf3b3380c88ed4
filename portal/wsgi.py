import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Filing looks the requester up in Okta: import the adapter (the okta SDK takes seconds)
# and the URLconf as each web worker starts, not on its first request during an incident.
from portal.core.preload import preload  # noqa: E402 - needs Django set up

preload()
