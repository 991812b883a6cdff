"""Pure logic: no I/O, no docker, no git. Everything here is a function of its arguments."""
