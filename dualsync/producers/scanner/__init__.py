"""Change capture for apps that cannot be changed: scan JSON sources, publish the differences."""

from dualsync.producers.scanner.scan import PassResult, Scanner, digest
from dualsync.producers.scanner.state import ScanState, scan_keys

__all__ = ["PassResult", "ScanState", "Scanner", "digest", "scan_keys"]
