"""The audit trail (pure): events and their leaves, the RFC 6962 tree, signed checkpoints and
offline verification of an exported trail."""
