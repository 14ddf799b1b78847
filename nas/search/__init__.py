"""Search: experiments, strategies, the study and its reports. Called, the package runs one search:
``nas.search("quickstart", trials=5)`` is ``nas.api.search``."""

from nas.api import callable_package

callable_package(__name__)
