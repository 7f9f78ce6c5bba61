"""Intake: the data contract, crosswalks from a district's own export, validation and processing."""
