"""SQLite cassette storage: named migrations, one writer, write-behind."""

from proxy.store.cassette_store import CassetteStore, StoreError

__all__ = ["CassetteStore", "StoreError"]
