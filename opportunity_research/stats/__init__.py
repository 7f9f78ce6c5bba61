"""General statistics: gap tables, small-cell suppression and the mixed-model growth engine."""
