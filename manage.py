#!/usr/bin/env python
import atexit
import gc
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    # Nothing needs collecting at exit; without this, interpreter shutdown walks
    # every object the okta SDK's ~1,000 pydantic models left (about a second
    # after seed_demo, which `make demo` waits for).
    atexit.register(gc.freeze)
    execute_from_command_line(sys.argv)
