"""``python -m metakit ...``: see `metakit.cli`."""
import sys

from metakit.cli import main

sys.exit(main())
