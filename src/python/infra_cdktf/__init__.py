"""infra_cdktf: the CDKTF app that synthesizes the LKE GPU cluster and every Kubernetes resource."""

__version__ = "0.1.0"
