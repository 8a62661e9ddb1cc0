"""The store's schema migrations (Alembic): ``env.py`` and one file a revision in ``versions/``.

Run them with ``customs-hub db upgrade``; hub/store/migrate.py is the code that does.
"""
