"""Simulated estates for anju: households with ground truth, Modbus meters, face gates, the tenancy system.

Concurrency: asyncio. An estate (``device_sims.estate``) runs its Modbus servers and its gate source as
tasks on one event loop; paho's network thread reaches it only through ``call_soon_threadsafe``.
"""
