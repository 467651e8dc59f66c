"""Liveness and readiness: is the database reachable and migrated to the code's head."""
