"""Monte Carlo alert validation: many seeded replications of an incident family, the rules
backtested on each, detection probability, times and false positives with 95 % intervals
(``tronsim validate-alerts``), and threshold selection under uncertainty.

family (the incident-family YAML), replication (one seeded replication), summary (statistics),
selection (threshold grid, Pareto front), run (resumable runs on the capacity executors),
outputs (JSON, tables, plots, report page), cli (the command's arguments).
"""
