"""Vision stages, one module each, in data-flow order:
detector -> quality -> tracker -> landmarks/align -> embedder. `pipeline.FacePipeline` chains them."""
