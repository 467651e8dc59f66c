"""A synthetic English trust: patients in real LSOAs and appointments with modelled DNAs."""
