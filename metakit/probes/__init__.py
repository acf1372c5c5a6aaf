"""Probes of trained things: what a finished run memorised, the frozen-θ bound of a modulation."""
