"""Monitoring the farm: readings and their history, the dashboard, the status page, metrics.

Reads the store and the farm's state; its HTTP routes are mounted beside the builder API.
"""
