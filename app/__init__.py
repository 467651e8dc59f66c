"""Navigator: patient navigator call management for NHS outpatient clinics."""

__version__ = "0.1.0"
