"""``python -m anyarray_nn.cli``: the same as ``anyarray-nn``."""

import sys

from .main import main

sys.exit(main())
