"""``python -m signgate``."""

import sys

from signgate.cli import main

sys.exit(main())
