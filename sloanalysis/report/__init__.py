"""SLO reports: the data a report shows, its plots and gates, and the notebooks that render it."""
