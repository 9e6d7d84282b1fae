"""``python -m lti_reduce``: the ``lti-reduce`` command line."""

import sys

from .cli import main

sys.exit(main())
