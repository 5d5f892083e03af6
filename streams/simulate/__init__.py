"""The contact-center simulator behind ``callslo simulate``: a discrete-event model that emits
contract-v1 events, optional fault injection, and file or Kafka output with pacing."""

from streams.simulate.model import Simulation
from streams.simulate.profile import Scenario, default_scenario, load_scenario, parse_scenario, stationary_scenario

__all__ = ["Simulation", "Scenario", "default_scenario", "load_scenario", "parse_scenario",
           "stationary_scenario"]
