"""The stack file as Docker reads it: load, interpolate, normalise, emit."""
