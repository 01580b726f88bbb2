"""The Lambda entry points of the engine and of a team's workflows function: each parses its
event, calls the library and shapes the answer (``Handler: stepwell.handlers.<name>.handler``;
the code comes from the Stepwell layer or an installed ``stepwell``)."""
