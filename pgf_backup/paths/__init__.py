"""Offline evaluation of the requests AWS will make against the planned policy documents."""
