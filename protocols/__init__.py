"""Protocol kinds (what to do, as steps) and the recipes shipped with labspin.

    from labspin.protocols import load_recipe
    recipe = load_recipe("staircase", overrides={"cycles": 10})
    for step in recipe.protocol.steps(): ...
"""
from labspin.protocols.base import Demand, ParameterError, Protocol, Step
from labspin.protocols.endurance import Endurance
from labspin.protocols.loop import Loop
from labspin.protocols.potdep import PotDep
from labspin.protocols.recipe import PROTOCOLS, Recipe, load_recipe, parse_recipe, shipped_recipes
from labspin.protocols.retention import Retention
from labspin.protocols.staircase import Staircase

__all__ = ["Demand", "Endurance", "Loop", "PROTOCOLS", "ParameterError", "PotDep", "Protocol", "Recipe", "Retention",
           "Staircase", "Step", "load_recipe", "parse_recipe", "shipped_recipes"]
