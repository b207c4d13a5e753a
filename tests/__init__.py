"""Tests for clipverify."""
