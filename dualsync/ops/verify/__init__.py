"""The verifier: canonical forms of both sides, sampled verify, drift reports, repair."""
