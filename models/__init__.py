"""anju analytics models: feature definitions, rules and scores; pure code, no broker or database."""
