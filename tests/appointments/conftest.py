"""The API under test needs a signed-in user: a manager, who sees every patient.

Navigators see only their own patients: tests/auth/test_access_rows.py.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.roles import Role
from tests.auth.helpers import create_user, sign_in


@pytest.fixture
def manager_client(app_client: TestClient, session: Session) -> TestClient:
    user = create_user(session, role=Role.MANAGER)
    session.commit()
    sign_in(app_client, user.username)
    return app_client
