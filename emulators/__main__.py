"""`python -m emulators`: the same as `python -m emulators.cloud` (start the local cloud in the foreground)."""

import sys

from emulators.cloud import main

sys.exit(main())
