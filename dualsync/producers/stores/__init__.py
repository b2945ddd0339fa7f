"""Legacy-store adapters: MongoDB (motor), a JSON directory, one JSON file, JSON lines."""

from dualsync.producers.stores._base import FileStore
from dualsync.producers.stores._files import UnreadableFileError, read_json_stable
from dualsync.producers.stores.json_dir import JsonDirStore
from dualsync.producers.stores.json_file import JsonFileStore
from dualsync.producers.stores.json_lines import JsonLinesStore
from dualsync.producers.stores.mongo import MongoStore
from dualsync.producers.stores.open import LegacyStores, open_stores, store_for

__all__ = [
    "FileStore",
    "JsonDirStore",
    "JsonFileStore",
    "JsonLinesStore",
    "LegacyStores",
    "MongoStore",
    "UnreadableFileError",
    "open_stores",
    "read_json_stable",
    "store_for",
]
