"""The synthetic generator's parts: registry, latent risk, events, defects and export writing.

`src/data/generate.py` is the stage that ties them together.
"""
