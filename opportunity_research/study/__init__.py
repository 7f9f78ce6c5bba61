"""The Opportunity Myth study: resources, climate, trajectories, equity gaps, the scorecard, findings and
``unprotected_analysis`` (the complete tables; ``disclosure.district.analyze_district`` protects them)."""
