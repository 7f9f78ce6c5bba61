"""The batch: every district's report notebook run, screened and published (Dask)."""
