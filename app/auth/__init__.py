"""Accounts, roles, server-side sessions, CSRF protection and the audit log."""
