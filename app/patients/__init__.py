"""Patients as the PAS knows them, with the needs and deprivation the service acts on."""
