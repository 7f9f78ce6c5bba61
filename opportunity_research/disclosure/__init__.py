"""Disclosure control: the joint suppression pass over a district's published tables and the privacy screen."""
