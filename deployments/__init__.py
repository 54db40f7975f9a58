"""Ray Serve streaming service: an addon's block stack as a chain of deployments behind an HTTP ingress."""
