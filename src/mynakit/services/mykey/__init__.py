"""The MyKey platform (マイキープラットフォーム, docs/services.md §B): a card's authentication
certificate serial -> a MyKey ID -> each connected service's own ID and a pairwise pseudonym.

``core`` holds the rules (framework-free), ``store`` the tables (SQLAlchemy), ``http`` the API
(FastAPI), ``client`` the HTTP client the CLI and counters use.
"""
