"""``python -m switchyard_gateway``: the same as ``switchyard-gateway``."""

from __future__ import annotations

import sys

from switchyard_gateway._cli import main

sys.exit(main())
