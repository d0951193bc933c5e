"""cassette-proxy: record, replay and inspect OpenAI API traffic through SQLite cassettes."""

__version__ = "0.1.0"
