"""The sandbox cluster: a local Kubernetes API that the real clients accept (and, as it grows,
the simulated GPU nodes, DCGM metrics and SageMaker behind it)."""
