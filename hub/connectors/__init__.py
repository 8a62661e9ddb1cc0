"""Domestic connectors other than the gRPC port: ways a domestic system hands documents to the
hub and takes partners' messages from it (drop folders)."""
