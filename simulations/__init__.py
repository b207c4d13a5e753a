"""The Monte Carlo engine for clipped SGD (torch). Imports theory; built in a later issue."""
