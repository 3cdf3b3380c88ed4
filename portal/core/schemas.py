"""Shapes every JSON API router shares: strict input, length-bounded text, one error body."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import ConfigDict, StrictStr, StringConstraints

Text = Annotated[StrictStr, StringConstraints(max_length=5000)]
ShortText = Annotated[StrictStr, StringConstraints(max_length=2000)]
NonBlank = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]


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
