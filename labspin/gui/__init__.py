"""Qt live bench window (`labspin gui`): a thin shell over the runner, store and analysis API."""
