"""Synthetic data: the demo districts and synthetic statewide populations."""
