# TEST DOUBLE standing in for the real pyarrow, which cannot be installed on the
# test machines.  Only `pyarrow.flight` (middleware types and errors) exists.
