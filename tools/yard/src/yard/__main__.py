"""``python -m yard``: the same as the ``yard`` command."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
