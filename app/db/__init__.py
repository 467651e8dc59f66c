"""Database plumbing shared by every feature: declarative base, engine, sessions, migrations."""
