"""The hub's procedures around the pure core: ingress from partners, domestic submission,
delivery, auditing, and the keys it reads."""
