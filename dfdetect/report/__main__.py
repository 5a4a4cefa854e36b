"""``python -m dfdetect.report``: see :mod:`dfdetect.report`."""

import sys

from dfdetect.report import main

sys.exit(main())
