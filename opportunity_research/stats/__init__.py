"""General statistics: gap tables, small-cell suppression, the mixed-model growth engine,
sensitivity to unmeasured confounding (:mod:`.sensitivity`) and gaps from performance-level counts (:mod:`.ordinal`)."""
