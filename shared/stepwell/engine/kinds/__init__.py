"""The kinds of step, one module each (or per family): how a step of the kind starts, what its
timer means, and the events only it receives. A kind imports the engine's shared vocabulary
(state, events, commands, the decision's builder, outcomes, attempts) and never another kind:
the engine's core assembles them into one table (``core.KINDS``)."""
