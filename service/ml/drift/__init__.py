"""Drift: how far the customers scored now have moved from those a model was trained on."""
