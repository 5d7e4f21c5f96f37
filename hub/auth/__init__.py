"""Users, roles, estate scopes and sessions of the inspector application."""
