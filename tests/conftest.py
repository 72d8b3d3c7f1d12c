import sys
from pathlib import Path

# Helpers shared by the tests (memclient, schema_check, harness) are plain modules in this folder.
sys.path.insert(0, str(Path(__file__).parent))
