"""Thin Lambda entry points: parse, call one logic function, shape the output."""
