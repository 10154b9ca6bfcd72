"""The quickstart's data: a real, bundled data set and a contract reviewed for it."""
