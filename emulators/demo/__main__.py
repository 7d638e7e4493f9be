"""`python -m emulators.demo` (what `make run` runs).

After a failure or an interruption, invocations the runner abandoned may still be retrying requests against the
stopped cloud in background threads (a Python thread cannot be cancelled); everything external is already
stopped by then, so the process exits at once instead of waiting for them.
"""

import logging
import os
import sys

from emulators.demo.run import main

status = main()
if status != 0:
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)
sys.exit(status)
