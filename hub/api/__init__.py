"""The hub's inspector API (JSON) and inspector pages (server-rendered HTML)."""
