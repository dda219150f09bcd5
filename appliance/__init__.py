"""Live facial recognition appliance for police vans.

The package follows the data flow: capture -> vision -> matching -> (watchlist, events, sync, console).
"""

__version__ = "0.1.0"
