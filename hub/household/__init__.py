"""The household's side: sign-in by one-time code, their cases in plain words, notice and answer, welfare."""
