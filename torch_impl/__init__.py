"""Gradient clippers for ordinary PyTorch training. Built in a later issue."""
