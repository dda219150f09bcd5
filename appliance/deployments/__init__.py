"""Deployments: matching runs only inside an authorised, recorded deployment."""
