"""Shapes every JSON API router shares: strict input, length-bounded text, one error body.

Every text field of every API input is a ``SafeText``: a strict string, bounded in
length, refusing NUL and the other control characters (newlines and tabs only where
multi-line text is allowed). Ids and counts are bounded integers: nothing a client
sends can overflow a database column (docs/security.md "Input").
"""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Field, Path, Schema
from pydantic import ConfigDict, StrictInt, StrictStr, StringConstraints

# C0 controls, DEL and C1 controls; the multi-line variant lets TAB, LF and CR through.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
CONTROL_CHARACTERS_REFUSED = "Control characters (such as NUL) are not allowed."
# PostgreSQL's bigint: ids beyond it cannot exist.
MAX_ID = 2**63 - 1


def SafeText(
    max_length: int, *, multiline: bool = False, min_length: int = 0, strip: bool = False
) -> Any:
    return Annotated[
        StrictStr,
        StringConstraints(
            strip_whitespace=strip,
            min_length=min_length or None,
            max_length=max_length,
            pattern=MULTI_LINE if multiline else ONE_LINE,
        ),
    ]


Text = SafeText(5000, multiline=True)
ShortText = SafeText(2000, multiline=True)
NonBlank = SafeText(2000, multiline=True, min_length=1, strip=True)
Line = SafeText(128)
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
# Minutes of access: far above any level's maximum (the services say what that is),
# far below what a date can hold.
Minutes = Annotated[StrictInt, Field(ge=-(2**31), le=2**31)]


class StrictInput(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Errors ----------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str = Field(description="What went wrong, for a person to read.")
    errors: dict[str, list[str]] | None = Field(
        default=None,
        description='Field name -> messages; "__all__" for errors not tied to one field.',
    )


# The refusals every operation may answer with, each with the one error body.
ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


# A path parameter naming a row: /requests/{request_id}. 404 beyond, never an overflow.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
