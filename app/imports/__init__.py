"""PAS extract import: streaming, validated, all-or-nothing loads of patients and appointments."""
