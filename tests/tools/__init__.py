"""Tests of the gladier tools and their compute functions."""
