"""Service level objectives: specifications, error budgets and burn rates, rule generation,
the Workbook table."""
