"""The qnnc compiler: front end, IR, verifier, passes and lowerings."""
