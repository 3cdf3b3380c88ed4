"""``manage.py audit_checkpoint``: sign the audit chain's head and store it outside the database."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from portal.audit import checkpoints


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of the audit log's head to AUDIT_CHECKPOINT_DIR, the log "
        "and (when configured) the S3 bucket; print it as JSON."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = checkpoints.write_checkpoint()
        self.stdout.write(json.dumps(checkpoint.as_json(), sort_keys=True))
