"""A real Kubernetes control plane on loopback, built from upstream's Go modules.

The sandbox (`sim.sandbox`) is our imitation of Kubernetes; this package runs the real thing
beside it, so the imitation can be judged: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and, on request, Kueue, each built from its published module at a pinned
version (`versions`), started as processes (`plane`), with GPU nodes whose kubelet is a small
stand-in (`kubelet`) that runs their pods as the sandbox's does.

Only the `scripts/control-plane` command and the `tests/real` tier use it; neither `spillway
demo` nor the fast tests need Go.
"""
