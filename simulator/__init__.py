"""A SimPy model of the TRON payout service, exporting the seed's Prometheus metrics."""

from simulator.model import SimulationResult, simulate
from simulator.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["Scenario", "ScenarioError", "SimulationResult", "load_scenario", "simulate"]
