"""Protocol kinds (what to do, as steps) and the recipes shipped with labspin."""
