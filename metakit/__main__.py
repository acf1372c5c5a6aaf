"""``python -m metakit ...``: see `metakit.cli`."""
import sys

from metakit.cli import main
from metakit.experiments.executors import end_workers_on_term

end_workers_on_term()  # `kill` of a --workers N table ends its pool too
sys.exit(main())
