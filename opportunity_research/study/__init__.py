"""The Opportunity Myth study: resources, climate, trajectories, equity gaps, the scorecard, findings and
``analyze_district``."""
