"""Tests that start a Ray of their own (``voxstack serve`` as a user runs it, the autoscaling bench's cluster),
apart from the serve tests' shared cluster: that one is stopped before these run, so they start on idle cores."""
