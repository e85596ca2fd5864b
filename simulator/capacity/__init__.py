"""Capacity planning: sweeps over scenario parameters, replications, intervals and executors."""
