"""Rebook and cancel requests: what a navigator agreed with a patient, handed to the booking
team, and closed when the PAS (the system of record) makes the change."""
