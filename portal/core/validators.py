"""Django form validators sharing the API's input rules (portal.core.schemas)."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator

from portal.core.schemas import CONTROL_CHARACTERS_REFUSED, MULTI_LINE, ONE_LINE

no_control_characters = RegexValidator(re.compile(ONE_LINE), CONTROL_CHARACTERS_REFUSED)
no_control_characters_but_newlines = RegexValidator(
    re.compile(MULTI_LINE), CONTROL_CHARACTERS_REFUSED
)
