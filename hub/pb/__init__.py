"""Generated protobuf code; do not edit (see protos/generate.py)."""
