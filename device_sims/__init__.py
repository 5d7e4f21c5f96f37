"""Simulated estates for anju: households with ground truth, Modbus meters, face gates, the tenancy system."""
