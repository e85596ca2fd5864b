"""Live mode: the simulated service over real HTTP in real time, its load generator and its
monitoring stack."""
