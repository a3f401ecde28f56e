"""`python -m flitstack_dagster.cli ...`: the same as the `flitstack` command."""

import sys

from flitstack_dagster.cli import main

sys.exit(main())
