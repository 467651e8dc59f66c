"""Reference data and NHS code lists: ethnic categories, attendance codes, specialties, IMD 2019."""
