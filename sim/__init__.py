"""The offline simulator and the sandbox cluster: they drive policies.plan() like the controller."""
