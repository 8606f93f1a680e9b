"""The controller and its I/O: Kubernetes, Prometheus and SageMaker adapters, and the CLI."""
