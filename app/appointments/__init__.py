"""Clinics and outpatient appointments, with the history of every change to them."""
