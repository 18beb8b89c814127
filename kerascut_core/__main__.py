"""``python -m kerascut_core`` runs the CLI."""

from __future__ import annotations

import sys

from kerascut_core.cli.app import main

sys.exit(main())
