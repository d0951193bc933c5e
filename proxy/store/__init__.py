"""SQLite cassette storage: named migrations, one writer, write-behind."""

from proxy.store.cassette_store import CassetteStore
from proxy.store.sqlite_file import StoreError

__all__ = ["CassetteStore", "StoreError"]
