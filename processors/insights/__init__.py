"""Insights: what the stored predictions and outcomes add up to. Pure code, no I/O."""
