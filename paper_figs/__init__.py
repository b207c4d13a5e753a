"""Figures for a write-up. Built in a later issue."""
