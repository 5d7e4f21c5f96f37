"""Cases: one per suspected unit and kind, with frozen evidence, filed to the tenancy system."""
