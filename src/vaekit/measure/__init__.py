"""Measurement: log-likelihoods, ELBO breakdowns, latent diagnostics and latent operations."""
