"""The live HL7 v2 feed from the PAS: an MLLP listener, its inbox and dead-letter list."""
