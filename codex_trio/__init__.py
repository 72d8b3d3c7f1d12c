"""codex-trio: the Codex app-server protocol, served from Python on trio."""

__version__ = "0.1.0"

# The protocol and every version string we show clients follow this reference release.
REFERENCE_VERSION = "0.94.0"
