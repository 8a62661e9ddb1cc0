"""The pure core: bytes and values in, values or a ``HubError`` out.

Nothing here imports grpc, a database driver or an XML parser; tests/test_layers.py checks it in
a fresh interpreter and ruff's banned imports say the same at lint time.
"""
