"""`make run`: the whole stack on embedded defaults, for a newcomer's first five minutes."""
