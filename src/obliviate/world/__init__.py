"""The embedded synthetic world: fictitious people, crafts and countries, generated deterministically."""

from obliviate.world.build import build_world
from obliviate.world.world import World, recorded_world

__all__ = ["World", "build_world", "recorded_world"]
