"""Reports: labels and number formats, tables, figures, pages, PDFs (Chromium), the cross-district report and
the explorer."""
