"""Detection: apply the rules of ``models`` to ``unit_daily`` and keep alerts up to date."""
