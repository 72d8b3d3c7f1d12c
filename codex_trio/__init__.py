"""codex-trio: the Codex app-server protocol, served from Python on trio."""

import os as _os

__version__ = "0.1.0"

# The protocol and every version string we show clients follow this reference release.
REFERENCE_VERSION = "0.94.0"

# The parent as it was when the process started, read before anything slow happens: a parent that dies
# during start-up must still be noticed (see cli.main).
PARENT_PID_AT_START = _os.getppid()
