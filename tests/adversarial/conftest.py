"""Fixtures the attack families share with the tests they came from."""

from tests.test_audit import audited  # noqa: F401 - a hub with a trail, its Audit service and tokens
from tests.test_trail_export import signed_trail  # noqa: F401 - a store with a signed trail
